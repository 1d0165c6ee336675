import { InjectFlowProducer } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import type { FlowProducer, Job, JobsOptions } from 'bullmq';
import type { OrderRequest, OrderStep, PlacedOrder } from '../../order-messages.js';
import { priceOf } from '../catalogue.js';
import { OrderBook } from './order-book.js';

export const ORDER_FLOWS = 'order-flows';

/** Two tries, 300 ms apart: enough to see a retry in the output without waiting for it. */
const RETRY_ONCE: JobsOptions = { attempts: 2, backoff: { type: 'fixed', delay: 300 } };

/** Turns an order into a BullMQ flow: `place-order` waits on payment, stock and confirmation. */
@Injectable()
export class OrderPlacement {
  constructor(
    @InjectFlowProducer(ORDER_FLOWS) private readonly flows: FlowProducer,
    private readonly book: OrderBook,
  ) {}

  async place(request: OrderRequest): Promise<PlacedOrder> {
    const orderId = this.book.nextOrderId();
    const { job, children = [] } = await this.flows.add({
      name: 'place-order',
      queueName: 'orders',
      data: { orderId },
      children: [
        {
          name: 'charge-payment',
          queueName: 'payments',
          data: { orderId, card: request.card, amount: priceOf(request.item) * request.quantity },
          // No payment, no order: a failed charge fails the parent.
          opts: { ...RETRY_ONCE, failParentOnFailure: true },
        },
        {
          name: 'reserve-stock',
          queueName: 'stock',
          data: { orderId, item: request.item, quantity: request.quantity },
          opts: { ...RETRY_ONCE, failParentOnFailure: true },
        },
        {
          name: 'send-confirmation',
          queueName: 'notifications',
          data: { orderId, email: request.email },
          // A lost e-mail must not cancel a paid order: the parent goes on without it.
          opts: { ...RETRY_ONCE, ignoreDependencyOnFailure: true },
        },
      ],
    });
    this.book.add({ orderId, request, parent: stepOf(job), children: children.map((child) => stepOf(child.job)), compensations: [] });
    return { orderId, jobId: job.id as string };
  }
}

function stepOf(job: Job): OrderStep {
  return { name: job.name, queueName: job.queueName, jobId: job.id as string };
}
