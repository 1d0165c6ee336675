import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Test } from '@nestjs/testing';
import type { CompletedChild, FlowChildren } from 'nestjs-flow-failure';
import { FlowFailureTester, FlowFailureTestingModule, parentFailedEvent } from 'nestjs-flow-failure/testing';
import { OrderCompensation } from '../../sample/order-service/failures/order-compensation.js';
import { OrderBook } from '../../sample/order-service/orders/order-book.js';
import { PaymentsService } from '../../sample/order-service/payments/payments.service.js';
import { StockService } from '../../sample/order-service/stock/stock.service.js';

/** The order the events below are about: `place-order` orders/1 and its three steps. */
const PAYMENT = { name: 'charge-payment', queueName: 'payments', jobId: '2' };
const STOCK = { name: 'reserve-stock', queueName: 'stock', jobId: '3' };
const CONFIRMATION = { name: 'send-confirmation', queueName: 'notifications', jobId: '4' };

function completed(step: typeof PAYMENT, returnValue: unknown): CompletedChild {
  return { queueName: step.queueName, jobId: step.jobId, key: `bull:${step.queueName}:${step.jobId}`, jobName: step.name, returnValue };
}

function children(given: Partial<FlowChildren>): FlowChildren {
  return { completed: [], failed: [], ignored: [], pending: [], truncated: false, ...given };
}

/** The sample's compensation handler, unit-tested with the module's testing helpers: no Redis, fakes for the provider and the warehouse. */
describe('the sample: OrderCompensation', () => {
  const compile = async () => {
    const refunds: { orderId: number; amount: number; idempotencyKey: string }[] = [];
    const releases: { orderId: number; item: string; quantity: number; idempotencyKey: string }[] = [];
    const moduleRef = await Test.createTestingModule({
      imports: [FlowFailureTestingModule],
      providers: [
        OrderCompensation,
        OrderBook,
        { provide: PaymentsService, useValue: { refund: (orderId: number, amount: number, idempotencyKey: string) => refunds.push({ orderId, amount, idempotencyKey }) } },
        {
          provide: StockService,
          useValue: { release: (orderId: number, { item, quantity }: { item: string; quantity: number }, idempotencyKey: string) => releases.push({ orderId, item, quantity, idempotencyKey }) },
        },
      ],
    }).compile();
    const warnings: string[] = [];
    moduleRef.useLogger({ log() {}, error() {}, warn: (message: string) => warnings.push(message) });
    await moduleRef.init();
    const book = moduleRef.get(OrderBook);
    book.add({
      orderId: 7,
      request: { item: 'widget', quantity: 2, card: '4242 4242 4242 4242', email: 'ada@example.com' },
      parent: { name: 'place-order', queueName: 'orders', jobId: '1' },
      children: [PAYMENT, STOCK, CONFIRMATION],
      compensations: [],
    });
    return { tester: moduleRef.get(FlowFailureTester), book, refunds, releases, warnings, close: () => moduleRef.close() };
  };

  test('a declined card: the stock the completed reservation returned goes back, nothing is refunded', async () => {
    const { tester, book, refunds, releases, close } = await compile();
    // The factory's default: orders/1 failed by its payment payments/2 ("card declined").
    const event = parentFailedEvent({
      children: {
        ...parentFailedEvent().children,
        completed: [completed(STOCK, { reserved: { item: 'widget', quantity: 2 } }), completed(CONFIRMATION, { confirmationSentTo: 'ada@example.com' })],
      },
    });
    expect(tester.handlersFor(event)).toEqual(['OrderCompensation.compensate']);
    expect(await tester.deliver(event)).toEqual([{ handler: 'OrderCompensation.compensate', ok: true }]);
    expect(releases).toEqual([{ orderId: 7, item: 'widget', quantity: 2, idempotencyKey: event.id }]);
    expect(refunds).toEqual([]);
    expect(book.get(7)?.compensations).toEqual([
      {
        eventId: event.id,
        rootCause: { ...PAYMENT, reason: 'card declined' },
        released: { item: 'widget', quantity: 2 },
        refunded: 0,
      },
    ]);
    await close();
  });

  test('out of stock, paid after the order failed: the late payment, among the completed steps, is refunded, keyed by the event id', async () => {
    const { tester, book, refunds, releases, close } = await compile();
    const stock = { queueName: 'stock', jobId: '3', key: 'bull:stock:3' };
    const event = parentFailedEvent({
      failedChild: stock,
      rootCause: { ...stock, jobName: 'reserve-stock', failedReason: 'out of stock: widget' },
      children: children({ completed: [completed(PAYMENT, { charged: 25 })], failed: [{ ...stock, failedReason: 'out of stock: widget' }] }),
    });
    expect(await tester.deliver(event)).toEqual([{ handler: 'OrderCompensation.compensate', ok: true }]);
    expect(refunds).toEqual([{ orderId: 7, amount: 25, idempotencyKey: event.id }]);
    expect(releases).toEqual([]);
    expect(book.get(7)?.compensations).toMatchObject([{ rootCause: { ...STOCK, reason: 'out of stock: widget' }, refunded: 25 }]);
    await close();
  });

  test('gives back only what the completed steps returned: a step still pending (the wait ran out) is not undone, but named', async () => {
    const { tester, refunds, releases, warnings, close } = await compile();
    const pendingPayment = { queueName: 'payments', jobId: '2', key: 'bull:payments:2', jobName: 'charge-payment' };
    const event = parentFailedEvent({
      failedChild: { queueName: 'stock', jobId: '3', key: 'bull:stock:3' },
      children: children({ pending: [pendingPayment], completed: [completed(CONFIRMATION, { confirmationSentTo: 'ada@example.com' })] }),
    });
    expect(await tester.deliver(event)).toEqual([{ handler: 'OrderCompensation.compensate', ok: true }]);
    expect([refunds, releases]).toEqual([[], []]);
    expect(warnings).toEqual(['order 7: payments/2 still running, not undone']);
    await close();
  });

  test('an order it does not know makes it throw, so that the module tries again; other queues are not its business', async () => {
    const { tester, refunds, close } = await compile();
    const [outcome] = await tester.deliver(parentFailedEvent({ jobId: '99' }));
    expect(outcome).toMatchObject({ handler: 'OrderCompensation.compensate', ok: false, message: 'no order for job orders/99' });
    expect(tester.handlersFor(parentFailedEvent({ queueName: 'returns' }))).toEqual([]);
    expect(refunds).toEqual([]);
    await close();
  });
});
