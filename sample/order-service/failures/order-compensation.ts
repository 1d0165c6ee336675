import { Injectable, Logger } from '@nestjs/common';
import { OnParentFailed, type ParentFailedEvent } from 'nestjs-flow-failure';
import type { StepFailure } from '../../order-messages.js';
import { OrderBook } from '../orders/order-book.js';
import { stepResults } from '../orders/step-results.js';
import { PaymentsService } from '../payments/payments.service.js';
import { StockService } from '../stock/stock.service.js';

/** Undoes what the other steps of a failed order did, as the flow recorded it. */
@Injectable()
export class OrderCompensation {
  private readonly logger = new Logger(OrderCompensation.name);

  constructor(
    private readonly book: OrderBook,
    private readonly stock: StockService,
    private readonly payments: PaymentsService,
  ) {}

  /**
   * Runs once per failed order (in one replica, even with several running), after the
   * payment or stock step failed for good and BullMQ failed `place-order` with it.
   * `settled: true` holds the run until no step of the order is still running: the other
   * steps go on after the order failed, and one that completes late (a slow payment) is
   * then among `children.completed`, to be undone like the others.
   */
  @OnParentFailed({ queueName: 'orders', settled: true })
  compensate(event: ParentFailedEvent): void {
    const order = this.book.findByParentJob(event.queueName, event.jobId);
    // Throwing makes the module try the handler again later (handlerAttempts, handlerBackoffMs).
    if (!order) throw new Error(`no order for job ${event.queueName}/${event.jobId}`);
    // rootCause is the deepest failed job under the order (here the children have no children
    // of their own); it is undefined when `place-order` failed in its own processor.
    const cause = event.rootCause ?? { queueName: event.queueName, jobId: event.jobId, failedReason: event.failedReason };
    const rootCause: StepFailure = { ...this.book.stepOf(order, cause.queueName, cause.jobId), reason: cause.failedReason };
    // What the completed steps returned is what was charged and reserved: that, and only
    // that, is given back. The event's id makes each call idempotent, should a run repeat.
    const { charged, reserved } = stepResults(event.children.completed.map((step) => step.returnValue));
    if (reserved) this.stock.release(order.orderId, reserved, event.id);
    if (charged) this.payments.refund(order.orderId, charged, event.id);
    // Only after settledTimeoutMs (10 minutes by default) can a step still be running here.
    for (const step of event.children.pending) this.logger.warn(`order ${order.orderId}: ${step.queueName}/${step.jobId} still running, not undone`);
    this.book.recordCompensation(order.orderId, { eventId: event.id, rootCause, released: reserved, refunded: charged ?? 0 });
  }
}
