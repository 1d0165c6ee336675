import type { Job } from 'bullmq';
import type { FailureSource } from '../interfaces/failure-events.interface.js';

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
  /** The reason the stream entry carries: a child it names is asked about in the same round trip as the load. */
  failedReason?: string;
}
