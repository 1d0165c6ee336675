import { InjectFlowProducer, InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import type { FlowProducer, Job, Queue } from 'bullmq';
import type { OrderResult, OrderStatus } from '../../order-messages.js';
import { IncidentLog } from '../failures/incident-log.js';
import { OrderBook } from './order-book.js';
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
    };
  }
}
