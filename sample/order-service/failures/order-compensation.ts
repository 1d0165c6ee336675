import { Injectable } from '@nestjs/common';
import { OnParentFailed, type ParentFailedEvent } from 'nestjs-flow-failure';
import type { StepFailure } from '../../order-messages.js';
import { OrderBook } from '../orders/order-book.js';
import { PaymentsService } from '../payments/payments.service.js';
import { StockService } from '../stock/stock.service.js';

/** Undoes what the other steps of a failed order did. */
@Injectable()
export class OrderCompensation {
  constructor(
    private readonly book: OrderBook,
    private readonly stock: StockService,
    private readonly payments: PaymentsService,
  ) {}

  /**
   * Runs once per failed order (in one replica, even with several running), after the
   * payment or stock step failed for good and BullMQ failed `place-order` with it.
   * A sibling step that was still running when the order failed would escape this; in
   * this sample the failing step retries for 300 ms, long after its siblings finished.
   */
  @OnParentFailed('orders')
  compensate(event: ParentFailedEvent): void {
    const order = this.book.findByParentJob(event.queueName, event.jobId);
    // Throwing makes the module try the handler again later (handlerAttempts, handlerBackoffMs).
    if (!order) throw new Error(`no order for job ${event.queueName}/${event.jobId}`);
    // rootCause is the deepest failed job under the order (here the children have no children
    // of their own); it is undefined when `place-order` failed in its own processor.
    const cause = event.rootCause ?? { queueName: event.queueName, jobId: event.jobId, failedReason: event.failedReason };
    const rootCause: StepFailure = { ...this.book.stepOf(order, cause.queueName, cause.jobId), reason: cause.failedReason };
    this.book.recordCompensation(order.orderId, {
      eventId: event.id,
      rootCause,
      released: this.stock.release(order.orderId),
      refunded: this.payments.refund(order.orderId),
    });
  }
}
