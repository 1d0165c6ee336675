import { Logger } from '@nestjs/common';
import type { ClaimStore } from '../claims/claim.store.js';
import type { UnwantedClaims } from '../claims/claim.types.js';
import { type FailureOccurrence, toSnapshot } from '../classifier/failure-occurrence.js';
import { MESSAGES } from '../flow-failure.messages.js';

/** How long a read occurrence waits before its snapshot is stored: most runs are done by then. */
const DELAY_MS = 200;

interface Pending {
  occurrence: FailureOccurrence;
  /** Claims the read took of handlers that do not want the occurrence. */
  unwanted: string[];
  /** Its runs here not yet done. */
  open: number;
}

/**
 * The follow-up of the claims a stream read took before it knew what the failure was:
 * stores the occurrence's snapshot (what another replica needs to run a claim it takes
 * over) and releases the claims of handlers that turned out not to want it. It waits
 * DELAY_MS and writes what has gathered in one call; an occurrence whose runs are all done
 * by then needs no snapshot, so a catch-up's thousands of quick runs send none. Until a
 * snapshot is stored, a replica taking a claim over rebuilds the occurrence from its job,
 * which the read found in Redis a moment before.
 */
export class SnapshotWriter {
  private readonly logger = new Logger('FlowFailureModule');
  /** Added since the last tick, and added before it (written at the next tick). */
  private current = new Map<string, Pending>();
  private previous = new Map<string, Pending>();
  private timer?: NodeJS.Timeout;
  private readonly writing = new Set<Promise<void>>();

  constructor(
    private readonly claims: Pick<ClaimStore, 'releaseUnwanted'>,
    private readonly markerTtlMs: number,
  ) {}

  /** Nothing waiting or being written. */
  get idle(): boolean {
    return this.current.size === 0 && this.previous.size === 0 && this.writing.size === 0;
  }

  /** An occurrence a read claimed, with `runs` runs queued here and the handler keys of its unwanted claims. */
  add(occurrence: FailureOccurrence, runs: number, unwanted: string[]): void {
    this.current.set(occurrence.id, { occurrence, unwanted, open: runs });
    this.timer ??= setInterval(() => this.tick(), DELAY_MS);
  }

  /**
   * One of the occurrence's runs here is done (succeeded): its snapshot is needed by one run
   * less. With none left to run and no claim to release, nothing is left to write: it is
   * dropped at once, so that its job and events die young instead of waiting for a tick (a
   * catch-up's thousands of runs would otherwise all outlive a few garbage collections).
   */
  runDone(occurrenceId: string): void {
    const map = this.current.has(occurrenceId) ? this.current : this.previous;
    const pending = map.get(occurrenceId);
    if (!pending) return;
    pending.open--;
    if (pending.open <= 0 && pending.unwanted.length === 0) map.delete(occurrenceId);
  }

  /** Writes everything waiting now (shutdown: the claims handed back next may need the snapshots). */
  async flush(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const all = [...this.previous.values(), ...this.current.values()];
    this.previous = new Map();
    this.current = new Map();
    this.write(all);
    await Promise.allSettled([...this.writing]);
  }

  private tick(): void {
    const due = [...this.previous.values()];
    this.previous = this.current;
    this.current = new Map();
    if (this.previous.size === 0 && due.length === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.write(due);
  }

  private write(pending: readonly Pending[]): void {
    const requests: UnwantedClaims[] = [];
    for (const { occurrence, unwanted, open } of pending) {
      if (open <= 0 && unwanted.length === 0) continue;
      requests.push({ occurrenceId: occurrence.id, snapshot: open > 0 ? toSnapshot(occurrence) : '', handlerKeys: unwanted });
    }
    if (requests.length === 0) return;
    // Should it fail, the unwanted claims' leases run out and the take-over releases them; a
    // missing snapshot is rebuilt from the job.
    const writing: Promise<void> = this.claims
      .releaseUnwanted(requests, this.markerTtlMs)
      .catch((error: unknown) => this.logger.warn(MESSAGES.unwantedNotReleased(error)))
      .finally(() => this.writing.delete(writing));
    this.writing.add(writing);
  }
}
