import type { FlowFailureEvent, FlowFailureEventKind } from '../interfaces/failure-events.interface.js';

/**
 * A handler that kept throwing (or timing out) for one occurrence. Each is a failed job of
 * the module's dead-letter queue (`deadLetterQueueName()`), kept for `deadLetterTtlMs`:
 * retrying that job runs the handler once more, removing it discards the dead letter.
 */
export interface DeadLetter {
  /** `<handler key>|<occurrence id>`: pass it to `replay()` or `discard()`. */
  id: string;
  occurrenceId: string;
  kind: FlowFailureEventKind;
  /** `Class.method`. */
  handler: string;
  queueName: string;
  jobId: string;
  lastError: string;
  attempts: number;
  /** When it last failed, in ms since the epoch. */
  failedAt: number;
  /** The event the handler was given (without `job`). */
  event: DeadLetterEvent;
}

export type DeadLetterEvent = { [K in FlowFailureEvent['kind']]: Omit<Extract<FlowFailureEvent, { kind: K }>, 'job'> }[FlowFailureEvent['kind']];

/** The data of a dead-letter job. */
export interface DeadLetterJobData {
  id: string;
  handlerKey: string;
  occurrenceId: string;
  kind: FlowFailureEventKind;
  handler: string;
  queueName: string;
  jobId: string;
  attempts: number;
  /** The error that made it a dead letter; later failed replays replace it as the job's failedReason. */
  lastError: string;
  event: DeadLetterEvent;
}
