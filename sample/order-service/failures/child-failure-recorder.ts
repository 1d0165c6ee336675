import { Injectable } from '@nestjs/common';
import { type ChildFailedEvent, OnChildFailed } from 'nestjs-flow-failure';
import { OrderBook } from '../orders/order-book.js';
import { IncidentLog } from './incident-log.js';

/** Writes every step that failed for good into the incident log. */
@Injectable()
export class ChildFailureRecorder {
  constructor(
    private readonly book: OrderBook,
    private readonly incidents: IncidentLog,
  ) {}

  /**
   * Runs once per failed child of an order, after its last attempt, whatever the child's
   * policy did to the order: 'fail' (payment, stock) or 'ignore' (the confirmation e-mail,
   * whose order completes anyway, so no parent handler would ever hear of it).
   */
  @OnChildFailed({ parentQueueName: 'orders' })
  record(event: ChildFailedEvent): void {
    const order = this.book.findByParentJob(event.parent.queueName, event.parent.jobId);
    if (!order) throw new Error(`no order for job ${event.parent.queueName}/${event.parent.jobId}`);
    this.incidents.add({
      eventId: event.id,
      orderId: order.orderId,
      failure: { ...this.book.stepOf(order, event.queueName, event.jobId), reason: event.failedReason },
      attemptsMade: event.attemptsMade,
      parentPolicy: event.parentPolicy,
    });
  }
}
