import { Logger } from '@nestjs/common';
import type { ClaimStore } from '../claims/claim.store.js';
import { claimMember, parseOccurrenceId } from '../claims/formats.js';
import type { FlowChildrenReader } from '../classifier/flow-children.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { ParentFailedEvent } from '../interfaces/failure-events.interface.js';
import type { RedisKeys } from '../redis/redis-keys.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { Run } from './run.js';

/** Parked claims are looked at again after a quarter of the wait so far, at least this long ... */
const MIN_PARK_MS = 1000;
/** ... and at most this long. */
const MAX_PARK_MS = 30_000;
/** After a check that failed (Redis trouble), the runs held here are checked again after this. */
const RETRY_MS = 1000;

/**
 * Settled deliveries: a run of a `settled` handler starts only once the failed parent has
 * no pending child, or its wait (`settledTimeoutMs`) is over, with the children as they are
 * then. Until then its claim is parked in Redis (park.lua): it leaves this instance, and
 * whichever replica's take-over finds it due looks again. So a wait survives restarts and
 * costs no memory or slot here.
 */
export class SettledGate {
  private readonly logger = new Logger('FlowFailureModule');
  private batch: Run[] = [];
  /** The claims being checked here: one admission each. */
  private readonly admitted = new Set<string>();
  private readonly checking = new Set<Promise<void>>();
  private readonly retries = new Set<NodeJS.Timeout>();

  constructor(
    private readonly claims: ClaimStore,
    private readonly children: FlowChildrenReader,
    private readonly keys: RedisKeys,
    private readonly leases: LeaseKeeper,
    /** Where a run goes once its parent is settled or its wait is over. */
    private readonly start: (run: Run) => void,
  ) {}

  /** Nothing being checked or waiting to be checked again here. */
  get idle(): boolean {
    return this.batch.length === 0 && this.checking.size === 0 && this.retries.size === 0;
  }

  /** A run of a settled handler, whose claim this instance holds: started when its parent is settled, else parked. */
  admit(run: Run): void {
    const member = claimMember(run.handlerKey, run.occurrenceId);
    if (this.admitted.has(member)) return;
    this.admitted.add(member);
    this.leases.hold(run);
    if (this.batch.push(run) === 1) setImmediate(() => this.checkBatch());
  }

  stop(): void {
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    this.batch = [];
    this.admitted.clear();
  }

  private readmit(run: Run): void {
    this.admitted.delete(claimMember(run.handlerKey, run.occurrenceId));
    this.admit(run);
  }

  private checkBatch(): void {
    const runs = this.batch;
    this.batch = [];
    if (runs.length === 0) return;
    const checking: Promise<void> = this.check(runs)
      .catch((error: unknown) => {
        this.logger.warn(MESSAGES.settledCheckFailed(runs.length, error));
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          for (const run of runs) this.readmit(run);
        }, RETRY_MS);
        this.retries.add(timer);
      })
      .finally(() => this.checking.delete(checking));
    this.checking.add(checking);
  }

  private async check(runs: readonly Run[]): Promise<void> {
    const parents = runs.map((run) => this.keys.job(run.event.queueName, run.event.jobId));
    const { now, settled } = await this.children.settled(parents);
    const park: { run: Run; delayMs: number }[] = [];
    const ready: Promise<void>[] = [];
    runs.forEach((run, i) => {
      const waited = now - (parseOccurrenceId(run.occurrenceId)?.finishedOn ?? now);
      const timeoutMs = run.settledTimeoutMs ?? 0;
      if (settled[i] || waited >= timeoutMs) {
        ready.push(this.startWithChildren(run, parents[i]));
      } else {
        park.push({ run, delayMs: Math.min(Math.max(MIN_PARK_MS, Math.floor(waited / 4)), MAX_PARK_MS, timeoutMs - waited) });
      }
    });
    if (park.length > 0) {
      const parked = await this.claims.park(
        park.map(({ run, delayMs }) => ({ handlerKey: run.handlerKey, occurrenceId: run.occurrenceId, delayMs, attemptsMade: run.attempt - 1 })),
      );
      park.forEach(({ run }, i) => {
        this.leases.unhold(run);
        this.admitted.delete(claimMember(run.handlerKey, run.occurrenceId));
        if (!parked[i]) this.logger.warn(MESSAGES.claimLost(run.binding.name, run.occurrenceId));
      });
    }
    await Promise.all(ready);
  }

  /** The run, with the parent's children as they are now. */
  private async startWithChildren(run: Run, parentKey: string): Promise<void> {
    const event = run.event as ParentFailedEvent;
    const children = await this.children.read(parentKey);
    this.admitted.delete(claimMember(run.handlerKey, run.occurrenceId));
    this.start({ ...run, event: { ...event, children } });
  }
}
