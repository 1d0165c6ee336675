import type { FlowFailureEvent, FlowFailureEventKind } from '../interfaces/failure-events.interface.js';

/** One decorator's arguments, validated. An absent field matches anything. */
export interface HandlerFilter {
  queueNames?: ReadonlySet<string>;
  jobNames?: ReadonlySet<string>;
  /** Parent handlers only. */
  causedByChild?: boolean;
  /** Child handlers only. */
  parentQueueNames?: ReadonlySet<string>;
  /** Parent handlers only: wait until the parent has no pending child (at most timeoutMs; undefined: the module's default). */
  settled?: { timeoutMs?: number };
}

/** What a filter is compared with: the facts of one event. */
export interface FilterSubject {
  kind: FlowFailureEventKind;
  queueName: string;
  jobName?: string;
  causedByChild?: boolean;
  parentQueueName?: string;
}

/** The facts of an event that filters are compared with. */
export function subjectOf(event: FlowFailureEvent): FilterSubject {
  return event.kind === 'parent-failed'
    ? { kind: event.kind, queueName: event.queueName, jobName: event.jobName, causedByChild: event.causedByChild }
    : { kind: event.kind, queueName: event.queueName, jobName: event.jobName, parentQueueName: event.parent.queueName };
}

export function filterMatches(filter: HandlerFilter, subject: FilterSubject): boolean {
  return (
    (!filter.queueNames || filter.queueNames.has(subject.queueName)) &&
    (!filter.jobNames || (subject.jobName !== undefined && filter.jobNames.has(subject.jobName))) &&
    (filter.causedByChild === undefined || filter.causedByChild === subject.causedByChild) &&
    (!filter.parentQueueNames ||
      (subject.parentQueueName !== undefined && filter.parentQueueNames.has(subject.parentQueueName)))
  );
}
