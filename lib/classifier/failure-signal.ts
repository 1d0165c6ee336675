import type { Job } from 'bullmq';
import type { ReadClaims } from '../claims/claim.types.js';
import type { FailureSource, FlowChildren, RootCause } from '../interfaces/failure-events.interface.js';

/** What a source knows: job X of queue Q may have failed terminally. The classifier decides the rest. */
export interface FailureSignal {
  source: FailureSource;
  queueName: string;
  jobId: string;
  /**
   * The job as this app already has it, which spares a load: the one a Worker of this app
   * just failed (it outlives `removeOnFail`), or the stored one read with its stream entry.
   */
  job?: Job;
  /** When the events stream recorded the failure (its entry id's time), for stream signals. */
  reportedAt?: number;
  /** Answers read with the job (see StoredFacts): each spares the classifier a read. */
  facts?: StoredFacts;
  /** The reason the stream entry carries: a child it names is asked about in the same round trip as the load. */
  failedReason?: string;
  /**
   * Set when the stream's read recorded this failure and took its claims (every handler
   * of the queue that was free, whether it matches or not): the dispatcher runs the ones
   * that match and releases the rest, and claims nothing again.
   */
  claimed?: ReadClaims;
}

/** What a script found beside a stored failed job, so the classifier need not ask Redis. */
export interface StoredFacts {
  /** The job's children (none: it had none); undefined when not asked. */
  children?: FlowChildren;
  /** The child its failedReason names (`child <key> failed`), and whether that child is among its failed children. */
  namedChild?: { key: string; failed: boolean };
  /** The job at the end of the chain of failed children that starts at `namedChild` (when that one failed). */
  rootCause?: RootCause;
}
