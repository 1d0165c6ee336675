import { Logger } from '@nestjs/common';
import type { ClaimStore } from '../claims/claim.store.js';
import type { HeldClaim } from '../claims/claim.types.js';
import type { FailureOccurrence } from '../classifier/failure-occurrence.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { FailureDispatcher } from './failure.dispatcher.js';

const BATCH = 200;

/**
 * Crash recovery for claims: a claim whose holder stopped renewing it (the process died
 * mid-run or while backing off) is rebuilt from the occurrence's snapshot and dispatched
 * again, through the same claim script as every first delivery.
 */
export class ClaimTakeover {
  private readonly logger = new Logger('FlowFailureModule');
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly claims: ClaimStore,
    private readonly dispatcher: FailureDispatcher,
    /** The recorded occurrence, or undefined once it is forgotten. */
    private readonly restore: (occurrenceId: string) => Promise<FailureOccurrence | undefined>,
    private readonly intervalMs: number,
    /** True while live holders may still be renewing leases that ran out during a Redis outage. */
    private readonly holdersCatchingUp: () => boolean,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.takeOver()
        .catch((error: unknown) => this.logger.warn(MESSAGES.takeoverFailed(error)))
        .finally(() => (this.running = undefined));
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async takeOver(): Promise<void> {
    if (this.holdersCatchingUp()) return;
    const expired = await this.claims.expired(BATCH);
    const byOccurrence = new Map<string, HeldClaim[]>();
    for (const claim of expired) {
      byOccurrence.set(claim.occurrenceId, [...(byOccurrence.get(claim.occurrenceId) ?? []), claim]);
    }
    // All at once: their snapshot reads and job loads travel together, not one occurrence per round trip.
    const restored = await Promise.all(
      [...byOccurrence].map(async ([occurrenceId, claims]) => {
        const occurrence = await this.restore(occurrenceId);
        if (!occurrence) await Promise.all(claims.map((claim) => this.claims.dropLease(claim)));
        else await this.dispatcher.releaseUnwanted(occurrence, claims);
        return occurrence;
      }),
    );
    const occurrences = restored.filter((o): o is FailureOccurrence => o !== undefined);
    if (occurrences.length > 0) await this.dispatcher.dispatch(occurrences);
  }
}
