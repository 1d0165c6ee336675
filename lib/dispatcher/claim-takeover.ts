import { Logger } from '@nestjs/common';
import type { ClaimStore } from '../claims/claim.store.js';
import type { HeldClaim } from '../claims/claim.types.js';
import type { FailureOccurrence } from '../classifier/failure-occurrence.js';
import { MESSAGES } from '../flow-failure.messages.js';
import { isTransientRedisError } from '../redis/redis-errors.js';
import type { FailureDispatcher } from './failure.dispatcher.js';

/** Expired claims taken over per tick. */
const BATCH = 200;
/** The longest pause after take-overs that failed in a row. */
const MAX_PAUSE_MS = 30_000;

/**
 * Crash recovery for claims: a claim whose holder stopped renewing it (the process died
 * mid-run, while backing off or during a settled wait) is rebuilt from the occurrence's
 * snapshot and dispatched again, through the same claim script as every first delivery.
 * It takes over only what the run queue has room for; the rest is left to other
 * replicas, or the next tick.
 */
export class ClaimTakeover {
  private readonly logger = new Logger('FlowFailureModule');
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private failures = 0;
  private pausedUntil = 0;

  constructor(
    private readonly claims: ClaimStore,
    private readonly dispatcher: FailureDispatcher,
    /** The recorded occurrence, or undefined once it is forgotten. */
    private readonly restore: (occurrenceId: string) => Promise<FailureOccurrence | undefined>,
    private readonly intervalMs: number,
    /** True while live holders may still be renewing leases that ran out during a Redis outage (LeaseTrust). */
    private readonly holdersCatchingUp: () => boolean,
    /** Runs the run queue can take now. */
    private readonly room: () => number,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (performance.now() < this.pausedUntil) return;
      this.running ??= this.takeOver()
        .then(() => {
          this.failures = 0;
        })
        .catch((error: unknown) => {
          // Backs off while it keeps failing; logged once per streak.
          if (this.failures++ === 0) this.logger.warn(MESSAGES.takeoverFailed(error));
          this.pausedUntil = performance.now() + Math.min(MAX_PAUSE_MS, this.intervalMs * 2 ** this.failures);
        })
        .finally(() => (this.running = undefined));
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async takeOver(): Promise<void> {
    if (this.room() <= 0) return;
    // Counted against the room from now: other sources would take it meanwhile.
    const room = Math.min(BATCH, this.room());
    if (room > 0) await this.dispatcher.delivering(room, () => this.takeOverUpTo(room));
  }

  private async takeOverUpTo(room: number): Promise<void> {
    // While live holders may be catching up after an outage, only the claims handed back.
    const handedBackOnly = this.holdersCatchingUp();
    const expired = await this.claims.expired(room, handedBackOnly);
    // Asked again: a call sent before an outage is answered the moment Redis is back, when
    // every lease has run out and the live holders have not renewed yet. (The claim rule
    // would grant none of them then; this spares restoring them.)
    if (!handedBackOnly && this.holdersCatchingUp()) return;
    const byOccurrence = new Map<string, HeldClaim[]>();
    for (const claim of expired) {
      byOccurrence.set(claim.occurrenceId, [...(byOccurrence.get(claim.occurrenceId) ?? []), claim]);
    }
    // All at once: their snapshot reads and job loads travel together, not one occurrence per round trip.
    const restored = await Promise.all([...byOccurrence].map(([occurrenceId, claims]) => this.restoreOne(occurrenceId, claims)));
    const occurrences = restored.filter((o): o is FailureOccurrence => o !== undefined);
    if (occurrences.length > 0) await this.dispatcher.dispatch(occurrences);
  }

  /** The occurrence to run again; undefined when nothing could run it (its leases are dropped). */
  private async restoreOne(occurrenceId: string, claims: readonly HeldClaim[]): Promise<FailureOccurrence | undefined> {
    let occurrence: FailureOccurrence | undefined;
    try {
      occurrence = await this.restore(occurrenceId);
    } catch (error) {
      if (isTransientRedisError(error)) throw error;
      // Only this occurrence is broken: set aside, so that the claims behind it are taken over.
      this.logger.error(MESSAGES.occurrenceUnrestorable(occurrenceId, error));
    }
    if (!occurrence) await Promise.all(claims.map((claim) => this.claims.dropLease(claim)));
    else await this.dispatcher.releaseUnwanted(occurrence, claims);
    return occurrence;
  }
}
