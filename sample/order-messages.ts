import { randomBytes } from 'node:crypto';
import type { ParentPolicy } from 'nestjs-flow-failure';

/**
 * This run's name: the BullMQ key prefix and the namespace of the message patterns.
 * Redis pub/sub channels are shared by everything connected to a Redis server (no key
 * prefix or database number separates them), so without it two runs of the sample on
 * one Redis would answer each other's requests. Your own service can use plain names.
 */
export const RUN_ID = `sample-${randomBytes(3).toString('hex')}`;

export const PLACE_ORDER = { cmd: 'place-order', run: RUN_ID };
export const ORDER_STATUS = { cmd: 'order-status', run: RUN_ID };

/** What a customer asks for. */
export interface OrderRequest {
  item: string;
  quantity: number;
  card: string;
  email: string;
}

export interface PlacedOrder {
  orderId: number;
  jobId: string;
}

/** One job of an order's flow: the parent `place-order` or one of its three children. */
export interface OrderStep {
  name: string;
  queueName: string;
  jobId: string;
}

export interface StepFailure extends OrderStep {
  reason: string;
}

/** A step that finished after its order had failed: BullMQ lets a failed order's other steps go on. */
export interface LateStep extends OrderStep {
  state: string;
  afterMs: number;
}

/** What `OrderCompensation` did when an order failed. */
export interface Compensation {
  eventId: string;
  rootCause: StepFailure;
  released?: { item: string; quantity: number };
  refunded: number;
}

/** What `ChildFailureRecorder` wrote down when a step failed for good. */
export interface Incident {
  eventId: string;
  orderId: number;
  failure: StepFailure;
  attemptsMade: number;
  parentPolicy: ParentPolicy;
}

/** What the `place-order` job returns once its children are done. */
export interface OrderResult {
  charged: number;
  reserved: { item: string; quantity: number };
  confirmation: string;
}

export interface OrderStatus {
  orderId: number;
  /** The BullMQ state of the `place-order` job. */
  state: string;
  /** Every job of the order is finished and every failure among them has been handled. */
  settled: boolean;
  result?: OrderResult;
  compensations: Compensation[];
  incidents: Incident[];
  lateSteps: LateStep[];
  /** What the payment and stock books hold for the order now: nothing, once a failed order is compensated. */
  holding: { charged: number; items: number };
}
