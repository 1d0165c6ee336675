import type { RootCause } from '../interfaces/failure-events.interface.js';

interface Recent {
  finishedOn: number;
  /** This job's root cause as a failed child: itself, or the leaf below it. */
  rootCause?: RootCause;
  /** Its occurrence is in Redis (claimed or marked), recorded by this process. */
  recorded: boolean;
  seenAt: number;
}

const CAPACITY = 5000;
const TTL_MS = 60_000;

/**
 * A small, bounded memory of the failures this process classified lately. A parent fails
 * moments after its child: the child's facts are here, so the root-cause walk need not load
 * it again. And when this process's Worker already recorded a failure, the events stream's
 * entry for it needs no second load and classification.
 */
export class RecentFailures {
  private readonly entries = new Map<string, Recent>();

  remember(jobKey: string, finishedOn: number, rootCause: RootCause | undefined): void {
    this.entries.delete(jobKey); // re-insert: Map order is the eviction order
    this.entries.set(jobKey, { finishedOn, rootCause, recorded: false, seenAt: Date.now() });
    if (this.entries.size > CAPACITY) this.entries.delete(this.entries.keys().next().value as string);
  }

  markRecorded(jobKey: string, finishedOn: number): void {
    const entry = this.fresh(jobKey);
    if (entry?.finishedOn === finishedOn) entry.recorded = true;
  }

  rootCauseOf(jobKey: string): RootCause | undefined {
    return this.fresh(jobKey)?.rootCause;
  }

  /** Whether this process recorded a failure of the job at about `timeMs` (a stream entry's time). */
  recordedAround(jobKey: string, timeMs: number, toleranceMs: number): boolean {
    const entry = this.fresh(jobKey);
    return entry !== undefined && entry.recorded && Math.abs(entry.finishedOn - timeMs) <= toleranceMs;
  }

  private fresh(jobKey: string): Recent | undefined {
    const entry = this.entries.get(jobKey);
    if (entry && Date.now() - entry.seenAt > TTL_MS) {
      this.entries.delete(jobKey);
      return undefined;
    }
    return entry;
  }
}
