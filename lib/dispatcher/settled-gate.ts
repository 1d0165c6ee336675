import { Logger } from '@nestjs/common';
import type { ClaimStore } from '../claims/claim.store.js';
import { claimMember, parseOccurrenceId } from '../claims/formats.js';
import type { FlowChildrenReader } from '../classifier/flow-children.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { FlowFailureEvent, ParentFailedEvent } from '../interfaces/failure-events.interface.js';
import type { RedisKeys } from '../redis/redis-keys.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { Run } from './run.js';

/** A parent is looked at again after a quarter of the wait so far, at least this long ... */
const MIN_LOOK_MS = 1000;
/** ... and at most this long. */
const MAX_LOOK_MS = 30_000;
/** After a step that failed (Redis trouble), its runs are checked again after this. */
const RETRY_MS = 1000;

/** A settled run this gate looks after, from its admission until it starts or its claim is lost. */
interface Waiting {
  run: Run;
  /** Its claim is held here (renewed by the lease keeper); false while it is parked in Redis, or may be. */
  held: boolean;
  /** While parked: when this owner looks at the parent again. */
  timer?: NodeJS.Timeout;
}

/**
 * Settled deliveries: a run of a `settled` handler starts only once the failed parent has
 * no pending child, or its wait (`settledTimeoutMs`) is over, with the children as they are
 * then. Until then its claim is parked in Redis (park.lua), so the wait costs no slot or
 * renewal here. This owner looks at the parent again on a timer of its own, and takes the
 * claim back (its owner may, any time) once the parent is settled or the wait is over:
 * not through the take-over, which waits a lease after an outage (LeaseTrust).
 * The park's lease ends `leaseMs` after that look is due, so another replica takes the
 * wait over only when this owner missed it (it died or stalled); at shutdown the parked
 * claims are handed back, to be taken over at once.
 */
export class SettledGate {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly waiting = new Map<string, Waiting>();
  private batch: Waiting[] = [];
  private readonly checking = new Set<Promise<void>>();
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly claims: ClaimStore,
    private readonly children: FlowChildrenReader,
    private readonly keys: RedisKeys,
    private readonly leases: LeaseKeeper,
    private readonly leaseMs: number,
    /** Where a run goes once its parent is settled or its wait is over. */
    private readonly start: (run: Run) => void,
  ) {}

  /** Nothing being checked or waiting to be checked again after a failed step here. */
  get idle(): boolean {
    return this.batch.length === 0 && this.checking.size === 0 && this.retries.size === 0;
  }

  /** Whether this gate looks after the claim: its run is being checked, or waits with its claim parked by this owner. */
  holds(handlerKey: string, occurrenceId: string): boolean {
    return this.waiting.has(claimMember(handlerKey, occurrenceId));
  }

  /** The runs whose claims are parked (or may be) and not held by the lease keeper: handed back at shutdown. */
  get parked(): Run[] {
    return [...this.waiting.values()].filter((w) => !w.held).map((w) => w.run);
  }

  /** A run of a settled handler, whose claim this instance holds: started when its parent is settled, else parked. */
  admit(run: Run): void {
    const member = claimMember(run.handlerKey, run.occurrenceId);
    if (this.waiting.has(member)) return;
    const waiting: Waiting = { run, held: true };
    this.waiting.set(member, waiting);
    this.leases.hold(run);
    this.enqueue(waiting);
  }

  /** Stops looking; resolves once the checks in flight are over (what they parked is in `parked`). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    for (const waiting of this.waiting.values()) clearTimeout(waiting.timer);
    this.batch = [];
    await Promise.allSettled([...this.checking]);
  }

  private enqueue(waiting: Waiting): void {
    if (this.stopped) return;
    if (this.batch.push(waiting) === 1) setImmediate(() => this.checkBatch());
  }

  private checkBatch(): void {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    const checking: Promise<void> = this.guarded(batch, () => this.check(batch)).finally(() => this.checking.delete(checking));
    this.checking.add(checking);
  }

  /** Runs a step for these runs; should it fail, those not started or lost meanwhile are checked again after RETRY_MS. */
  private async guarded(batch: readonly Waiting[], step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (error) {
      this.logger.warn(MESSAGES.settledCheckFailed(batch.length, error));
      const timer = setTimeout(() => {
        this.retries.delete(timer);
        for (const waiting of batch) if (this.waiting.get(claimMember(waiting.run.handlerKey, waiting.run.occurrenceId)) === waiting) this.enqueue(waiting);
      }, RETRY_MS);
      this.retries.add(timer);
    }
  }

  private async check(batch: readonly Waiting[]): Promise<void> {
    const parents = batch.map(({ run }) => this.keys.job(run.event.queueName, run.event.jobId));
    const { now, settled } = await this.children.settled(parents);
    const park: { waiting: Waiting; lookMs: number }[] = [];
    const ready: Waiting[] = [];
    batch.forEach((waiting, i) => {
      const waited = now - (parseOccurrenceId(waiting.run.occurrenceId)?.finishedOn ?? now);
      const timeoutMs = waiting.run.settledTimeoutMs ?? 0;
      if (settled[i] || waited >= timeoutMs) ready.push(waiting);
      else park.push({ waiting, lookMs: Math.min(Math.max(MIN_LOOK_MS, Math.floor(waited / 4)), MAX_LOOK_MS, timeoutMs - waited) });
    });
    await Promise.all([
      park.length > 0 && this.guarded(park.map((p) => p.waiting), () => this.park(park)),
      ready.length > 0 && this.guarded(ready, () => this.startReady(ready)),
    ]);
  }

  /** Parks the claims (again) until this owner's next look, and anyone's `leaseMs` after it. */
  private async park(park: readonly { waiting: Waiting; lookMs: number }[]): Promise<void> {
    const request = park.map(({ waiting: { run }, lookMs }) => ({
      handlerKey: run.handlerKey,
      occurrenceId: run.occurrenceId,
      delayMs: lookMs + this.leaseMs,
      attemptsMade: run.attempt - 1,
    }));
    let parked: boolean[];
    try {
      parked = await this.claims.park(request);
    } catch (error) {
      // Some calls of the batch may have parked their claims: taken back, not assumed held, if found settled.
      for (const { waiting } of park) waiting.held = false;
      throw error;
    }
    park.forEach(({ waiting, lookMs }, i) => {
      this.leases.unhold(waiting.run);
      waiting.held = false;
      if (!parked[i]) return this.lost(waiting);
      // Once stopped, no look is due here: the claim is handed back with `parked`.
      if (!this.stopped) waiting.timer = setTimeout(() => this.enqueue(waiting), lookMs);
    });
  }

  /** Takes back the parked claims among these, and starts each run that is still ours. */
  private async startReady(ready: readonly Waiting[]): Promise<void> {
    const parked = ready.filter((waiting) => !waiting.held).map((waiting) => waiting.run);
    const takenBack = new Map((await this.claims.takeBack(parked)).map((claim) => [claimMember(claim.handlerKey, claim.occurrenceId), claim.attempt]));
    await Promise.all(
      ready.map(async (waiting) => {
        if (!waiting.held) {
          const attempt = takenBack.get(claimMember(waiting.run.handlerKey, waiting.run.occurrenceId));
          if (attempt === undefined) return this.lost(waiting);
          waiting.run = { ...waiting.run, attempt };
          waiting.held = true;
          this.leases.hold(waiting.run);
        }
        const { run } = waiting;
        const event = await this.withChildrenNow(run.event);
        this.waiting.delete(claimMember(run.handlerKey, run.occurrenceId));
        this.start({ ...run, event });
      }),
    );
  }

  /** A settled handler's event (a parent's failure), with the parent's children as they are now. */
  async withChildrenNow(event: FlowFailureEvent): Promise<ParentFailedEvent> {
    const parent = event as ParentFailedEvent;
    return { ...parent, children: await this.children.read(this.keys.job(parent.queueName, parent.jobId)) };
  }

  /** Another instance took the claim over (this one stalled past its lease): it waits there now. */
  private lost({ run }: Waiting): void {
    this.leases.unhold(run);
    this.waiting.delete(claimMember(run.handlerKey, run.occurrenceId));
    this.logger.warn(MESSAGES.claimLost(run.binding.name, run.occurrenceId));
  }
}
