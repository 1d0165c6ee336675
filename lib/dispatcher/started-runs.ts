import { claimMember } from '../claims/formats.js';
import type { Run } from './run.js';

const CAPACITY = 20_000;

/**
 * The runs this process started lately, by claim and attempt. Two paths of one process
 * can hold the same claim at once: the stream's read claims in the process's own name a
 * failure that its Worker reserved, and the Worker's report starts it on the reservation.
 * Whichever comes second finds the attempt started here and does not start it again,
 * however far apart the two arrive (the first run may have finished by then).
 */
export class StartedRuns {
  private readonly started = new Map<string, { attempt: number; at: number }>();

  constructor(private readonly rememberMs: number) {}

  /** True the first time this attempt of this claim is started here (and remembers it). */
  first(run: Pick<Run, 'handlerKey' | 'occurrenceId' | 'attempt'>): boolean {
    const member = claimMember(run.handlerKey, run.occurrenceId);
    const now = performance.now();
    const known = this.started.get(member);
    if (known && known.attempt >= run.attempt && now - known.at < this.rememberMs) return false;
    this.started.delete(member);
    this.started.set(member, { attempt: run.attempt, at: now });
    if (this.started.size > CAPACITY) this.evictOldest(now);
    return true;
  }

  /** Drops what is older than `rememberMs`, and at least the oldest tenth. */
  private evictOldest(now: number): void {
    let excess = this.started.size - (CAPACITY - CAPACITY / 10);
    for (const [member, { at }] of this.started) {
      if (excess-- <= 0 && now - at < this.rememberMs) break;
      this.started.delete(member);
    }
  }
}
