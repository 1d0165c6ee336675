import type { ChildFailedEvent, FlowChildren, JobRef, ParentFailedEvent } from 'nestjs-flow-failure';

const PREFIX = 'bull';

function ref(queueName: string, jobId: string): JobRef {
  return { queueName, jobId, key: `${PREFIX}:${queueName}:${jobId}` };
}

/**
 * A `ParentFailedEvent` as the module would give it, for unit tests of handlers: by
 * default an order (`orders`/`1`) failed by its payment child (`payments`/`2`, declined),
 * with that child among `children.failed`. Anything given replaces the default; `id` and
 * the refs' keys follow `queueName` and `jobId` unless given; `causedByChild: false` drops
 * `failedChild`, `rootCause` and the failed child.
 */
export function parentFailedEvent(overrides: Partial<ParentFailedEvent> = {}): ParentFailedEvent {
  const queueName = overrides.queueName ?? 'orders';
  const jobId = overrides.jobId ?? '1';
  const causedByChild = overrides.causedByChild ?? true;
  const failedChild = causedByChild ? ref('payments', '2') : undefined;
  const children: FlowChildren = {
    completed: [],
    failed: failedChild ? [{ ...failedChild, jobName: 'charge', failedReason: 'card declined' }] : [],
    ignored: [],
    pending: [],
    truncated: false,
  };
  return {
    kind: 'parent-failed',
    id: `${queueName}:${jobId}:${Date.now()}`,
    queueName,
    jobId,
    jobName: 'place-order',
    failedReason: failedChild ? `child ${failedChild.key} failed` : 'order failed',
    causedByChild,
    failedChild,
    rootCause: failedChild && { ...failedChild, jobName: 'charge', failedReason: 'card declined', stacktrace: ['Error: card declined'] },
    children,
    source: 'worker',
    ...overrides,
  };
}

/**
 * A `ChildFailedEvent` as the module would give it, for unit tests of handlers: by default
 * a payment (`payments`/`2`) that failed its order (`orders`/`1`) after one attempt.
 * Anything given replaces the default; `id` follows `queueName` and `jobId` unless given.
 */
export function childFailedEvent(overrides: Partial<ChildFailedEvent> = {}): ChildFailedEvent {
  const queueName = overrides.queueName ?? 'payments';
  const jobId = overrides.jobId ?? '2';
  return {
    kind: 'child-failed',
    id: `${queueName}:${jobId}:${Date.now()}`,
    queueName,
    jobId,
    jobName: 'charge',
    failedReason: 'card declined',
    stacktrace: ['Error: card declined'],
    attemptsMade: 1,
    parent: ref('orders', '1'),
    parentPolicy: 'fail',
    source: 'worker',
    ...overrides,
  };
}
