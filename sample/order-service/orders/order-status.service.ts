import { InjectFlowProducer, InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import type { FlowProducer, Job, Queue } from 'bullmq';
import type { LateStep, OrderResult, OrderStatus } from '../../order-messages.js';
import { IncidentLog } from '../failures/incident-log.js';
import { PaymentsService } from '../payments/payments.service.js';
import { StockService } from '../stock/stock.service.js';
import { type BookedOrder, OrderBook } from './order-book.js';
import { ORDER_FLOWS } from './order-placement.service.js';

const FINISHED = new Set(['completed', 'failed']);

/** Where an order stands: BullMQ's view of its jobs, plus what the failure handlers did about them. */
@Injectable()
export class OrderStatusService {
  constructor(
    @InjectFlowProducer(ORDER_FLOWS) private readonly flows: FlowProducer,
    @InjectQueue('orders') private readonly orders: Queue,
    private readonly book: OrderBook,
    private readonly incidents: IncidentLog,
    private readonly payments: PaymentsService,
    private readonly stock: StockService,
  ) {}

  async status(orderId: number): Promise<OrderStatus> {
    const order = this.book.get(orderId);
    if (!order) throw new RpcException(`no order ${orderId}`);
    // The state first: once it says 'completed', the job read next has its return value.
    const state = await this.orders.getJobState(order.parent.jobId);
    const flow = await this.flows.getFlow({ queueName: order.parent.queueName, id: order.parent.jobId });
    const children = await Promise.all((flow.children ?? []).map(async ({ job }) => ({ job, state: await job.getState() })));
    const incidents = this.incidents.forOrder(orderId);
    const recorded = (job: Job) => incidents.some(({ failure }) => failure.queueName === job.queueName && failure.jobId === job.id);

    const settled =
      FINISHED.has(state) &&
      children.every((child) => FINISHED.has(child.state)) &&
      (state !== 'failed' || order.compensations.length > 0) &&
      children.every((child) => child.state !== 'failed' || recorded(child.job));
    return {
      orderId,
      state,
      settled,
      result: state === 'completed' ? (flow.job.returnvalue as OrderResult) : undefined,
      compensations: order.compensations,
      incidents,
      lateSteps: state === 'failed' ? this.lateSteps(order, flow.job, children) : [],
      holding: { charged: this.payments.balance(orderId), items: this.stock.held(orderId) },
    };
  }

  /** The steps of a failed order that finished after it. */
  private lateSteps(order: BookedOrder, parent: Job, children: { job: Job; state: string }[]): LateStep[] {
    const failedAt = parent.finishedOn ?? Infinity;
    return children.flatMap(({ job, state }) =>
      job.finishedOn && job.finishedOn > failedAt
        ? [{ ...this.book.stepOf(order, job.queueName, job.id as string), state, afterMs: job.finishedOn - failedAt }]
        : [],
    );
  }
}
