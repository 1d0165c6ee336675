import type { ParentPolicy } from 'nestjs-flow-failure';
import type { Compensation, Incident, OrderRequest, OrderStatus, OrderStep } from '../order-messages.js';

const POLICY_EFFECT: Record<ParentPolicy, string> = {
  fail: 'the order failed with it',
  ignore: 'the order went on without it',
  continue: 'the order went on',
  remove: 'the order forgot it',
  wait: 'the order waits forever',
};

export function placedLine(orderId: number, request: OrderRequest, expected: string): string {
  const card = `card ...${request.card.slice(-4)}`;
  return `placed order ${orderId}: ${request.quantity} x ${request.item}, ${card}, ${request.email} (${expected})`;
}

/** One line per handler run (compensation, incident) and late step, one for each order that completed. */
export function statusLines(status: OrderStatus): string[] {
  const order = `order ${status.orderId}`;
  const lines = status.compensations.map((compensation) => `${order} failed: ${describeCompensation(compensation)}`);
  for (const step of status.lateSteps) {
    lines.push(`${order} late step: ${jobName(step)} ${step.state} ${seconds(step.afterMs)} after the order failed`);
  }
  if (status.state === 'failed' && !holdsNothing(status)) {
    lines.push(`${order} still holds ${money(status.holding.charged)} and ${status.holding.items} items after its compensation`);
  }
  if (status.result) {
    const { charged, reserved, confirmation } = status.result;
    lines.push(`${order} completed: charged ${money(charged)}, reserved ${reserved.quantity} x ${reserved.item}, ${confirmation}`);
  }
  if (!status.settled) lines.push(`${order} did not settle: state ${status.state}, its failures not all handled`);
  return [...lines, ...status.incidents.map((incident) => `${order} incident: ${describeIncident(incident)}`)];
}

export function summaryLine(statuses: OrderStatus[], elapsedMs: number): string {
  const completed = statuses.filter((status) => status.state === 'completed').length;
  const failed = statuses.filter((status) => status.state === 'failed');
  const compensated = failed.filter((status) => status.compensations.length > 0).length;
  const late = failed.flatMap((status) => status.lateSteps).length;
  const incidents = statuses.flatMap((status) => status.incidents);
  const runs = [...statuses.flatMap((status) => status.compensations), ...incidents];
  const events = new Set(runs.map((run) => run.eventId)).size;
  const once = runs.length === events ? 'each handled once' : `but ${runs.length} handler runs: some ran more than once`;
  const holding = failed.filter((status) => !holdsNothing(status)).map((status) => status.orderId);
  const books = holding.length === 0 ? 'no failed order holds money or stock' : `failed orders holding money or stock: ${holding.join(', ')}`;
  return (
    `summary: ${statuses.length} orders, ${completed} completed, ${compensated} failed and compensated ` +
    `(${late} step${late === 1 ? '' : 's'} finished after the order failed); ${incidents.length} failed steps recorded; ` +
    `${events} failure events, ${once}; ${books} (${seconds(elapsedMs)})`
  );
}

function describeCompensation({ rootCause, released, refunded }: Compensation): string {
  const stock = released ? `released ${released.quantity} x ${released.item}` : 'released no stock';
  return `${jobName(rootCause)} -> "${rootCause.reason}" (root cause); ${stock}, refunded ${money(refunded)}`;
}

function describeIncident({ failure, attemptsMade, parentPolicy }: Incident): string {
  const attempts = `${attemptsMade} attempt${attemptsMade === 1 ? '' : 's'}`;
  return `${jobName(failure)} failed after ${attempts} -> "${failure.reason}" (policy ${parentPolicy}: ${POLICY_EFFECT[parentPolicy]})`;
}

/** BullMQ gives flow jobs UUIDs; their first 8 characters tell this run's jobs apart. */
function jobName(step: OrderStep): string {
  return `${step.queueName}/${step.name} ${step.jobId.slice(0, 8)}`;
}

function money(amount: number): string {
  return amount.toFixed(2);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Refunded all it was charged and gave back all it reserved (no more, no less). */
function holdsNothing({ holding }: OrderStatus): boolean {
  return holding.charged === 0 && holding.items === 0;
}
