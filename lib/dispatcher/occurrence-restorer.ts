import type { ClaimStore } from '../claims/claim.store.js';
import { parseOccurrenceId } from '../claims/formats.js';
import type { FailureClassifier } from '../classifier/failure.classifier.js';
import { type FailureOccurrence, fromSnapshot } from '../classifier/failure-occurrence.js';
import type { JobLoader } from '../classifier/job-loader.js';

/**
 * An occurrence as it was recorded, with its job as it is now: for claims taken over after
 * a crash, and for replays of dead letters.
 */
export class OccurrenceRestorer {
  constructor(
    private readonly claims: ClaimStore,
    private readonly loader: JobLoader,
    private readonly classifier: FailureClassifier,
  ) {}

  async restore(occurrenceId: string): Promise<FailureOccurrence | undefined> {
    const snapshot = await this.claims.snapshot(occurrenceId);
    const restored = snapshot ? await fromSnapshot(occurrenceId, snapshot, (queueName, jobId) => this.jobAsItIs(queueName, jobId)) : undefined;
    if (restored) return restored;
    // Claimed by a stream read whose process stopped before it stored the snapshot (or a
    // snapshot that does not parse): the job tells again what it was, as long as it is still
    // there, failed at that time.
    const ref = parseOccurrenceId(occurrenceId);
    if (!ref || !(await this.claims.recorded([occurrenceId]))[0]) return undefined;
    const [occurrence] = await this.classifier.classify([
      { source: 'stream', queueName: ref.queueName, jobId: ref.jobId, claimed: { occurrenceId, granted: [], firstRecorded: false } },
    ]);
    return occurrence?.id === occurrenceId ? occurrence : undefined;
  }

  /** The job now, for `event.job`: none when it is gone or its stored data does not parse. */
  private async jobAsItIs(queueName: string, jobId: string) {
    const job = await this.loader.load(queueName, jobId);
    return job && !this.loader.unreadableFields(job) ? job : undefined;
  }
}
