import { Logger } from '@nestjs/common';
import type { ClaimStore } from '../claims/claim.store.js';
import { claimMember } from '../claims/formats.js';
import { MESSAGES } from '../flow-failure.messages.js';
import { within } from '../util/within.js';
import type { Run } from './run.js';

/**
 * The claims this instance holds, and their leases: renewed every third of `leaseMs`
 * while a run is queued, running, backing off or being settled, handed back at shutdown.
 * A claim whose lease another instance took over is dropped here (`onLost`): it runs there now.
 */
export class LeaseKeeper {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly held = new Map<string, Run>();
  private readonly timer: NodeJS.Timeout;
  private renewing = false;

  constructor(
    private readonly claims: ClaimStore,
    leaseMs: number,
    private readonly onLost: (run: Run) => void,
  ) {
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(leaseMs / 3)));
  }

  hold(run: Run): void {
    this.held.set(claimMember(run.handlerKey, run.occurrenceId), run);
  }

  holds(handlerKey: string, occurrenceId: string): boolean {
    return this.held.has(claimMember(handlerKey, occurrenceId));
  }

  /** The run is settled (or its outcome could not be written): nothing of it is held here any more. */
  unhold(run: Run): void {
    this.held.delete(claimMember(run.handlerKey, run.occurrenceId));
  }

  /** Renews every held claim now (also after a Redis outage, before others may take them). */
  async renew(): Promise<void> {
    const held = [...this.held.values()];
    // One renewal at a time: during an outage they would queue up behind each other.
    if (held.length === 0 || this.renewing) return;
    this.renewing = true;
    try {
      const lost = await this.claims.lease(held, 'renew');
      for (const claim of lost) {
        const run = this.held.get(claimMember(claim.handlerKey, claim.occurrenceId));
        if (!run) continue;
        this.unhold(run);
        this.onLost(run);
        this.logger.warn(MESSAGES.claimLost(run.binding.name, run.occurrenceId));
      }
    } catch (error) {
      this.logger.warn(MESSAGES.renewFailed(held.length, error));
    } finally {
      this.renewing = false;
    }
  }

  /**
   * Stops renewing and hands every claim still held back, and those parked here for a
   * retry's backoff or a settled wait (`parked`), so that another replica takes each at
   * once, or when due.
   */
  async handBack(timeoutMs: number, parked: readonly Run[] = []): Promise<void> {
    clearInterval(this.timer);
    const unfinished = [...this.held.values(), ...parked];
    this.held.clear();
    if (unfinished.length > 0 && !(await within(timeoutMs, this.claims.lease(unfinished, 'release')))) {
      this.logger.warn(MESSAGES.claimsNotHandedBack(unfinished.length));
    }
  }
}
