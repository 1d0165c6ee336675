import type { RootCause } from '../interfaces/failure-events.interface.js';

interface Recent {
  finishedOn: number;
  /** This job's root cause as a failed child: itself, or the leaf below it. */
  rootCause?: RootCause;
  /** A Worker of this process reported the failure: true once its occurrence is in Redis (claimed or marked), false if that failed. */
  recorded?: Promise<boolean>;
  seenAt: number;
}

const CAPACITY = 5000;
const EVICT_DOWN_TO = CAPACITY - CAPACITY / 10;
const TTL_MS = 60_000;

/**
 * A small, bounded memory of the failures this process saw lately. A parent fails
 * moments after its child: the child's facts are here, so the root-cause walk need not load
 * it again. And when this process's Worker reported a failure, the events stream's entry
 * for it arrives at about the same time: it waits for that report instead of loading,
 * classifying and claiming the same failure a second time.
 */
export class RecentFailures {
  private readonly entries = new Map<string, Recent>();

  remember(jobKey: string, finishedOn: number, rootCause: RootCause | undefined): void {
    this.entry(jobKey, finishedOn).rootCause = rootCause;
  }

  /** A Worker of this process reported this failure; `recorded` tells, once known, whether it is in Redis. */
  reporting(jobKey: string, finishedOn: number, recorded: Promise<boolean>): void {
    this.entry(jobKey, finishedOn).recorded = recorded.catch(() => false);
  }

  rootCauseOf(jobKey: string): RootCause | undefined {
    return this.fresh(jobKey)?.rootCause;
  }

  /**
   * Whether a Worker of this process recorded a failure of the job that finished within
   * `toleranceMs` of `timeMs`. A report still being recorded is waited for: if it fails,
   * the caller must deliver the failure itself.
   */
  async recordedHere(jobKey: string, timeMs: number, toleranceMs: number): Promise<boolean> {
    const entry = this.fresh(jobKey);
    if (!entry || Math.abs(entry.finishedOn - timeMs) > toleranceMs) return false;
    return (await entry.recorded) ?? false;
  }

  /** The entry of this failure, kept if it is already known, else a new one (a retried job's new failure replaces the old). */
  private entry(jobKey: string, finishedOn: number): Recent {
    const known = this.fresh(jobKey);
    // Re-inserted either way: Map order is the eviction order.
    this.entries.delete(jobKey);
    const entry: Recent = known?.finishedOn === finishedOn ? known : { finishedOn, seenAt: 0 };
    entry.seenAt = performance.now();
    this.entries.set(jobKey, entry);
    if (this.entries.size > CAPACITY) this.evictOldest();
    return entry;
  }

  /**
   * Drops the oldest tenth at once, not one entry per insert: each entry re-inserted leaves
   * a deleted slot at the front of the Map, and every `keys().next()` walks past all of them.
   */
  private evictOldest(): void {
    let excess = this.entries.size - EVICT_DOWN_TO;
    for (const key of this.entries.keys()) {
      if (excess-- <= 0) break;
      this.entries.delete(key);
    }
  }

  private fresh(jobKey: string): Recent | undefined {
    const entry = this.entries.get(jobKey);
    if (entry && performance.now() - entry.seenAt > TTL_MS) {
      this.entries.delete(jobKey);
      return undefined;
    }
    return entry;
  }
}
