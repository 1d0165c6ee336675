import type { FlowFailureEventKind } from '../interfaces/failure-events.interface.js';

/** A handler that kept throwing for one occurrence, kept in Redis until replayed or discarded. */
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
}
