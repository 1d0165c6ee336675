import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Inject, Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { type ChildFailedEvent, type HandlerContext, OnChildFailed, OnParentFailed, type ParentFailedEvent } from 'nestjs-flow-failure';
import { FlowFailureTester, FlowFailureTestingModule, childFailedEvent, parentFailedEvent } from 'nestjs-flow-failure/testing';

/** What the handlers below call: replaced by a fake in the test, as a user's would be. */
@Injectable()
class StockService {
  release(_orderId: string, _key: string): Promise<void> {
    throw new Error('not in a unit test');
  }
}

@Injectable()
class OrderCompensation {
  constructor(@Inject(StockService) private readonly stock: StockService) {}

  @OnParentFailed({ queueName: 'orders', causedByChild: true })
  async undo(event: ParentFailedEvent) {
    if (event.children.completed.some((c) => c.queueName === 'stock')) await this.stock.release(event.jobId, event.id);
  }

  @OnChildFailed({ queueName: 'payments', parentQueueName: 'orders' })
  alert(event: ChildFailedEvent, { attempt }: HandlerContext) {
    if (attempt < 2) throw new Error(`pager down for ${event.jobId}`);
  }
}

/** The testing helpers as the README shows them: a Nest testing module, no Redis. */
describe('nestjs-flow-failure/testing', () => {
  const compile = async () => {
    const released: string[] = [];
    const moduleRef = await Test.createTestingModule({
      imports: [FlowFailureTestingModule],
      providers: [OrderCompensation, { provide: StockService, useValue: { release: async (orderId: string) => void released.push(orderId) } }],
    }).compile();
    await moduleRef.init();
    return { tester: moduleRef.get(FlowFailureTester), released, moduleRef };
  };

  test('an event reaches the handlers whose decorators match it, through the same filters', async () => {
    const { tester, released, moduleRef } = await compile();
    const reserved = { queueName: 'stock', jobId: '3', key: 'bull:stock:3', jobName: 'reserve', returnValue: { items: 2 } };
    const event = parentFailedEvent({ jobId: '42', children: { ...parentFailedEvent().children, completed: [reserved] } });
    expect(tester.handlersFor(event)).toEqual(['OrderCompensation.undo']);
    expect(await tester.deliver(event)).toEqual([{ handler: 'OrderCompensation.undo', ok: true }]);
    expect(released).toEqual(['42']);
    // The order's own failure: `causedByChild: true` keeps the handler out.
    expect(await tester.deliver(parentFailedEvent({ causedByChild: false }))).toEqual([]);
    await moduleRef.close();
  });

  test("a handler's throw is reported, not thrown; attempts are the test's to choose", async () => {
    const { tester, moduleRef } = await compile();
    const event = childFailedEvent();
    expect(event).toMatchObject({ kind: 'child-failed', queueName: 'payments', parent: { queueName: 'orders' }, parentPolicy: 'fail' });
    const [first] = await tester.deliver(event);
    expect(first).toMatchObject({ handler: 'OrderCompensation.alert', ok: false, message: 'pager down for 2' });
    expect(await tester.deliver(event, { attempt: 2 })).toEqual([{ handler: 'OrderCompensation.alert', ok: true }]);
    // Another parent queue: the child handler's parentQueueName filter keeps it out.
    expect(await tester.deliver(childFailedEvent({ parent: { queueName: 'returns', jobId: '9', key: 'bull:returns:9' } }))).toEqual([]);
    await moduleRef.close();
  });

  test('the factories give consistent, realistic events', () => {
    const parent = parentFailedEvent({ queueName: 'invoices', jobId: 'inv-7' });
    expect(parent.id).toMatch(/^invoices:inv-7:\d+$/);
    expect(parent.rootCause?.failedReason).toBe('card declined');
    expect(parent.children.failed.map((c) => c.key)).toEqual([parent.failedChild?.key]);
    const own = parentFailedEvent({ causedByChild: false });
    expect([own.failedChild, own.rootCause, own.children.failed]).toEqual([undefined, undefined, []]);
  });
});
