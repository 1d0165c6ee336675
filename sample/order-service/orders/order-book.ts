import { Injectable } from '@nestjs/common';
import type { Compensation, OrderRequest, OrderStep } from '../../order-messages.js';

export interface BookedOrder {
  orderId: number;
  request: OrderRequest;
  parent: OrderStep;
  children: OrderStep[];
  compensations: Compensation[];
}

/** The orders this service placed, their jobs, and how each failed one was compensated (in memory). */
@Injectable()
export class OrderBook {
  private readonly orders = new Map<number, BookedOrder>();
  private lastOrderId = 0;

  nextOrderId(): number {
    return ++this.lastOrderId;
  }

  add(order: BookedOrder): void {
    this.orders.set(order.orderId, order);
  }

  get(orderId: number): BookedOrder | undefined {
    return this.orders.get(orderId);
  }

  /** The order whose `place-order` job this is. */
  findByParentJob(queueName: string, jobId: string): BookedOrder | undefined {
    return [...this.orders.values()].find((order) => order.parent.queueName === queueName && order.parent.jobId === jobId);
  }

  /** Which step of the order a job is, by queue and id (the failure events name jobs that way). */
  stepOf(order: BookedOrder, queueName: string, jobId: string): OrderStep {
    const step = [order.parent, ...order.children].find((job) => job.queueName === queueName && job.jobId === jobId);
    return step ?? { name: 'unknown step', queueName, jobId };
  }

  recordCompensation(orderId: number, compensation: Compensation): void {
    this.get(orderId)?.compensations.push(compensation);
  }
}
