import { Logger } from '@nestjs/common';
import type { ClaimStore } from '../claims/claim.store.js';
import type { ClaimRequest, ClaimResult, GrantedClaim, HeldClaim, ReadClaims, UnwantedClaims } from '../claims/claim.types.js';
import { claimMember } from '../claims/formats.js';
import type { FailureOccurrence } from '../classifier/failure-occurrence.js';
import { failedAttempt, toSnapshot } from '../classifier/failure-occurrence.js';
import type { HandlerRegistry } from '../discovery/handler.registry.js';
import { traced, tracing } from '../diagnostics.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { ShutdownBudget } from '../util/shutdown-budget.js';
import { within } from '../util/within.js';
import { filterMatches, subjectOf } from '../discovery/handler-filter.js';
import type { FlowChildrenReader } from '../classifier/flow-children.js';
import type { DeadLetterJobData } from '../dead-letters/dead-letter.js';
import type { RedisKeys } from '../redis/redis-keys.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { LeaseKeeper } from './lease-keeper.js';
import { SettledGate } from './settled-gate.js';
import { SnapshotWriter } from './snapshot-writer.js';
import { StartedRuns } from './started-runs.js';
import type { HandlerMatch, Run, RunResult } from './run.js';
import { RunQueue } from './run-queue.js';
import type { ReservationUse, WorkerReservations } from './worker-reservations.js';

/** The most of the shutdown budget kept for handing claims back. */
const HAND_BACK_MS = 1000;

export interface DispatcherOptions {
  handlerAttempts: number;
  handlerBackoffMs: number;
  handlerTimeoutMs: number;
  concurrency: number;
  /** Runs queued or in flight above which sources wait (see RunQueue). */
  backlogLimit: number;
  leaseMs: number;
  /** How long an occurrence no handler wanted is remembered, so the sweep does not load it again. */
  markerTtlMs: number;
  /** How long a `settled` handler waits for pending children, unless its decorator says. */
  settledTimeoutMs: number;
}

/**
 * Runs each matching handler once per occurrence. It finds the handlers an occurrence
 * matches and gets their claims in one of three ways: claims the stream's read already
 * took (run those that match, release the rest), a Worker's reservation (start at once,
 * record the claim behind), or a claim taken now. Runs go to the run queue; the lease
 * keeper holds their claims until they are settled.
 */
export class FailureDispatcher {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly leases: LeaseKeeper;
  private readonly runs: RunQueue;
  private readonly settled: SettledGate;
  private readonly startedHere: StartedRuns;
  private readonly snapshots: SnapshotWriter;
  private stopped = false;

  constructor(
    private readonly claims: ClaimStore,
    private readonly registry: HandlerRegistry,
    private readonly options: DispatcherOptions,
    /** Failures this process's Workers reserved as they started the jobs: their handlers start before the claim. */
    private readonly reservations: WorkerReservations,
    children: FlowChildrenReader,
    keys: RedisKeys,
    deadLetters: { add(letter: DeadLetterJobData): Promise<void> },
    private readonly telemetry: Pick<Telemetry, 'attempt' | 'recorded'>,
  ) {
    this.leases = new LeaseKeeper(claims, options.leaseMs, (run) => this.runs.withdraw(run));
    this.runs = new RunQueue(claims, this.leases, options, deadLetters, telemetry, (run) => void this.resumeRetry(run));
    this.settled = new SettledGate(claims, children, keys, this.leases, options.leaseMs, (run) => this.startRun(run));
    this.startedHere = new StartedRuns(2 * options.leaseMs);
    this.snapshots = new SnapshotWriter(claims, options.markerTtlMs);
  }

  /** How many more runs this instance should take on now (see RunQueue.room). */
  get room(): number {
    return this.runs.room;
  }

  /** Resolves once this instance has room for more runs (sources wait on it). */
  whenRoom(): Promise<void> {
    return this.runs.whenRoom();
  }

  /** Nothing queued, running, being settled, released or waiting to retry here. */
  get idle(): boolean {
    return this.runs.idle && this.settled.idle && this.snapshots.idle;
  }

  /** Runs queued, running, being settled or promised here. */
  get backlog(): number {
    return this.runs.backlog;
  }

  /** Renews every held claim now: after a Redis outage, before others may take them. */
  renewLeases(): Promise<void> {
    return this.leases.renew();
  }

  /**
   * Claims what is free for these occurrences and queues the runs. Occurrences whose claims
   * a stream read already took (`readClaims`) are not claimed again: their matching claims
   * run, the others are released. Resolves once the claims are recorded: true, or false when
   * stopped (nothing was recorded).
   */
  dispatch(occurrences: readonly FailureOccurrence[], readClaims: readonly ReadClaims[] = []): Promise<boolean> {
    return traced(tracing.dispatch, () => ({ occurrenceIds: occurrences.map((o) => o.id) }), () => this.claimAndQueue(occurrences, readClaims));
  }

  /** Counts a delivery of `count` failures against the room until `work` (classifying and dispatching them) ends. */
  delivering<T>(count: number, work: () => Promise<T>): Promise<T> {
    return this.runs.promise(count, work);
  }

  /** Counts `count` runs against the room until the returned release is called: claims a source takes before it delivers them. */
  holdRoom(count: number): () => void {
    return this.runs.hold(count);
  }

  private async claimAndQueue(occurrences: readonly FailureOccurrence[], readClaims: readonly ReadClaims[]): Promise<boolean> {
    if (this.stopped) {
      // Not to be run here any more: handed back, so that another replica takes them at once
      // (should that fail, their leases run out).
      await this.claims.lease(readClaims.flatMap((r) => r.granted), 'release').catch(() => undefined);
      return false;
    }
    const taken = new Map(readClaims.map((r) => [r.occurrenceId, r.granted]));
    const unclaimed = occurrences.filter((o) => !taken.has(o.id));
    const reserved = await this.reservedHere(unclaimed);
    const runNow = unclaimed.filter((o) => reserved.get(o) === 'run-now');
    const toClaim = unclaimed.filter((o) => reserved.get(o) !== 'run-now');
    const fromRead = this.runReadClaims(occurrences, taken);
    const none: ClaimResult = { granted: [], firstRecorded: [] };
    const started = runNow.length > 0 ? this.startOnReservation(runNow) : none;
    const claimed = toClaim.length > 0 ? this.claimAndRun(toClaim, (o) => reserved.get(o) === 'claim-first') : none;
    const results = await Promise.all([started, claimed]);
    const granted = [...fromRead, ...results.flatMap((r) => r.granted)];
    // Each failure is counted once among replicas: by the instance that recorded it first.
    const firstHere = new Set([...readClaims.filter((r) => r.firstRecorded).map((r) => r.occurrenceId), ...results.flatMap((r) => r.firstRecorded)]);
    for (const occurrence of occurrences) if (firstHere.delete(occurrence.id)) this.telemetry.recorded(occurrence);
    // A claim granted past its first attempt, outside our own retries, was someone else's.
    const takenOver = granted.filter((claim) => claim.attempt > 1).length;
    if (takenOver > 0) this.logger.warn(MESSAGES.tookOver(takenOver));
    return true;
  }

  /**
   * Releases the claims of handlers that do not want the occurrence: taken by a read before
   * it was classified, whose holder stopped before releasing them.
   */
  async releaseUnwanted(occurrence: FailureOccurrence, claims: readonly HeldClaim[]): Promise<void> {
    const { unwanted } = this.splitByMatch(occurrence, claims);
    if (unwanted.length === 0) return;
    const request = { occurrenceId: occurrence.id, snapshot: toSnapshot(occurrence), handlerKeys: unwanted };
    await this.claims.releaseUnwanted([request], this.options.markerTtlMs);
  }

  /**
   * Runs a dead letter's handler once more; a success clears the dead letter. A settled
   * handler gets the parent's children as they are now, not as the snapshot recorded them
   * at the failure: a replay runs at once (the dead-letter queue waits for its outcome), so
   * a child still pending is given as pending.
   */
  async replay(occurrence: FailureOccurrence, handlerKey: string): Promise<RunResult> {
    const found = this.matches(occurrence).find((m) => m.binding.key === handlerKey);
    if (!found) return { ok: false, error: MESSAGES.handlerNotDeclared(handlerKey) };
    // Read before the claim: a claim taken and then not queued would be held by no one until its lease ends.
    const target = found.settledTimeoutMs === undefined ? found : { ...found, event: await this.settled.withChildrenNow(found.event) };
    const request = { occurrenceId: occurrence.id, snapshot: toSnapshot(occurrence), handlerKeys: [handlerKey] };
    const { granted } = await this.claims.claim([request], { revive: true, markerTtlMs: this.options.markerTtlMs });
    if (granted.length === 0) return { ok: false, error: MESSAGES.notReplayable(), skipped: true };
    const run = this.run(granted[0], target);
    // A replay is one attempt, the one its claim grants.
    run.maxAttempt = granted[0].attempt;
    return new Promise<RunResult>((resolve) => {
      run.done = resolve;
      this.runs.enqueue(run);
    });
  }

  /**
   * Stops taking work, waits for runs in flight while the budget allows (keeping a part of
   * it to hand their claims back), then hands every unfinished claim back and stops
   * watching the handlers still running.
   */
  async stop(budget: ShutdownBudget): Promise<void> {
    this.stopped = true;
    const forHandBack = Math.min(HAND_BACK_MS, Math.floor(budget.left() / 5));
    await within(budget.left() - forHandBack, Promise.all([this.settled.stop(), this.runs.stop().then(() => this.snapshots.flush())]));
    await this.leases.handBack(budget.left(), [...this.runs.parked, ...this.settled.parked]);
    this.runs.abandon();
  }

  /** A retry's backoff is over: its parked claim is taken back (the claim rule counts the attempt) and run. */
  private async resumeRetry(run: Run): Promise<void> {
    if (this.stopped) return;
    try {
      const [claim] = await this.claims.takeBack([run]);
      if (claim) this.startRun({ ...run, attempt: claim.attempt });
    } catch (error) {
      // Still parked: taken over once its lease ends, here or elsewhere.
      this.logger.warn(MESSAGES.retryNotResumed(run.binding.name, run.occurrenceId, error));
    }
  }

  /** `asReserver`: claims taken in this owner's name while its reservation lived are its own (ClaimStore.claimReserved). */
  private async claimAndRun(occurrences: readonly FailureOccurrence[], asReserver: (o: FailureOccurrence) => boolean): Promise<ClaimResult> {
    const wanted = new Map(occurrences.map((o) => [o.id, this.unheldMatches(o)]));
    const requests = occurrences.map((occurrence) => claimRequest(occurrence, wanted.get(occurrence.id) ?? []));
    const reserver = occurrences.map(asReserver);
    const results = await Promise.all([
      this.claims.claim(requests.filter((_, i) => !reserver[i]), { markerTtlMs: this.options.markerTtlMs }),
      this.claims.claimReserved(requests.filter((_, i) => reserver[i]), this.options.markerTtlMs),
    ]);
    const result: ClaimResult = { granted: results.flatMap((r) => r.granted), firstRecorded: results.flatMap((r) => r.firstRecorded) };
    for (const claim of result.granted) {
      const match = wanted.get(claim.occurrenceId)?.find((m) => m.binding.key === claim.handlerKey);
      if (match) this.queueRun(this.run(claim, match));
    }
    return result;
  }

  /** How each occurrence a Worker here reported uses the reservation it took as it started the job (WorkerReservations). */
  private async reservedHere(occurrences: readonly FailureOccurrence[]): Promise<Map<FailureOccurrence, ReservationUse>> {
    const uses = new Map<FailureOccurrence, ReservationUse>();
    await Promise.all(
      occurrences.map(async (o) => {
        const attempt = o.source === 'worker' ? failedAttempt(o) : undefined;
        if (attempt) uses.set(o, await this.reservations.use(attempt));
      }),
    );
    return uses;
  }

  /**
   * Starts the handlers of reserved failures at once, and claims them as they run: nobody
   * else could take these claims while the reservation lived (they were taken in this
   * owner's name), so the claim is a record, not a question.
   */
  private async startOnReservation(occurrences: readonly FailureOccurrence[]): Promise<ClaimResult> {
    const wanted = occurrences.map((o) => ({ o, matches: this.unheldMatches(o) }));
    const started: Run[] = [];
    const waiting: Run[] = [];
    for (const { o, matches } of wanted) {
      for (const match of matches) {
        const run = this.run({ handlerKey: match.binding.key, occurrenceId: o.id, attempt: 1 }, match);
        // A settled handler waits for the parent's children anyway: it goes once its claim is in.
        if (run.settledTimeoutMs !== undefined) {
          waiting.push(run);
          continue;
        }
        if (!this.startedHere.first(run)) continue;
        this.runs.enqueue(run);
        started.push(run);
      }
    }
    // Sent once the handlers have begun: building and writing it (the snapshot's JSON above
    // all) would otherwise stand between the Worker's report and the handlers. It still goes
    // out in this turn of the event loop, so whatever the module sends for these runs (a
    // settle, a park, a renewal) follows it on the same connection.
    const recording = this.claims.claimReserved(
      wanted.map(({ o, matches }) => claimRequest(o, matches)),
      this.options.markerTtlMs,
    );
    let ours: ClaimResult;
    try {
      ours = await recording;
    } catch (error) {
      this.logger.error(MESSAGES.reservedClaimsNotRecorded(started.length, error));
      return { granted: [], firstRecorded: [] };
    }
    const confirmed = new Set(ours.granted.map((c) => claimMember(c.handlerKey, c.occurrenceId)));
    for (const run of started) {
      if (!confirmed.has(claimMember(run.handlerKey, run.occurrenceId))) {
        this.logger.error(MESSAGES.reservedButTakenElsewhere(run.binding.name, run.occurrenceId));
      }
    }
    for (const run of waiting) if (confirmed.has(claimMember(run.handlerKey, run.occurrenceId))) this.queueRun(run);
    return ours;
  }

  /**
   * Runs the claims a read took that match; the rest are released, and the snapshot stored
   * while a run still needs it, a moment later (SnapshotWriter). The claims of an occurrence
   * the classifier dropped (its job was retried or removed since) are released too.
   */
  private runReadClaims(occurrences: readonly FailureOccurrence[], taken: ReadonlyMap<string, GrantedClaim[]>): GrantedClaim[] {
    const granted: GrantedClaim[] = [];
    const classified = new Set<string>();
    for (const occurrence of occurrences) {
      const claims = taken.get(occurrence.id);
      if (!claims) continue;
      classified.add(occurrence.id);
      // A claim already running here (its lease lapsed and the read took it again) runs once.
      const fresh = claims.filter((claim) => !this.heldHere(claim.handlerKey, claim.occurrenceId));
      const split = this.splitByMatch(occurrence, fresh);
      this.snapshots.add(occurrence, split.matching.length, split.unwanted);
      for (const { claim, match } of split.matching) {
        const run = this.run(claim, match);
        run.done = (result) => {
          if (result.ok) this.snapshots.runDone(occurrence.id);
        };
        this.queueRun(run);
        granted.push(claim);
      }
    }
    const unclassified: UnwantedClaims[] = [];
    for (const [occurrenceId, claims] of taken) {
      if (!classified.has(occurrenceId)) unclassified.push({ occurrenceId, snapshot: '', handlerKeys: claims.map((c) => c.handlerKey) });
    }
    if (unclassified.length > 0) {
      void this.claims.releaseUnwanted(unclassified, this.options.markerTtlMs).catch((error: unknown) => this.logger.warn(MESSAGES.unwantedNotReleased(error)));
    }
    return granted;
  }

  /** The claims whose handler the occurrence matches (with the match), and the handler keys of the rest. */
  private splitByMatch<C extends HeldClaim>(occurrence: FailureOccurrence, claims: readonly C[]) {
    const wanted = this.matches(occurrence);
    const matching: { claim: C; match: HandlerMatch }[] = [];
    const unwanted: string[] = [];
    for (const claim of claims) {
      const match = wanted.find((m) => m.binding.key === claim.handlerKey);
      if (match) matching.push({ claim, match });
      else unwanted.push(claim.handlerKey);
    }
    return { matching, unwanted };
  }

  /** The matches not already held here: a claim held here is running or waiting; taking it again would run it twice. */
  private unheldMatches(occurrence: FailureOccurrence): HandlerMatch[] {
    return this.matches(occurrence).filter((m) => !this.heldHere(m.binding.key, occurrence.id));
  }

  /**
   * Held by the lease keeper, or a settled run waiting here with its claim parked: the gate
   * takes that claim back itself when it is due (a take-over here finds it expired only
   * when the gate's look is late, and would run it beside the gate's).
   */
  private heldHere(handlerKey: string, occurrenceId: string): boolean {
    return this.leases.holds(handlerKey, occurrenceId) || this.settled.holds(handlerKey, occurrenceId);
  }

  private matches(occurrence: FailureOccurrence): HandlerMatch[] {
    const found: HandlerMatch[] = [];
    for (const event of [occurrence.parentFailed, occurrence.childFailed]) {
      if (!event) continue;
      const subject = subjectOf(event);
      for (const binding of this.registry.match(subject)) {
        // A settled filter among those that match makes the run wait.
        const settled = binding.filters.find((f) => f.settled && filterMatches(f, subject))?.settled;
        found.push({ binding, event, settledTimeoutMs: settled ? (settled.timeoutMs ?? this.options.settledTimeoutMs) : undefined });
      }
    }
    return found;
  }

  /** A run whose claim is held here: to the run queue, or first to the settled gate. */
  private queueRun(run: Run): void {
    if (run.settledTimeoutMs !== undefined) this.settled.admit(run);
    else this.startRun(run);
  }

  /** To the run queue, unless this attempt was started here already (see StartedRuns). */
  private startRun(run: Run): void {
    if (this.startedHere.first(run)) this.runs.enqueue(run);
  }

  /** Field by field: two object spreads per run are a visible part of a catch-up's CPU profile. */
  private run({ handlerKey, occurrenceId, attempt }: GrantedClaim, { binding, event, settledTimeoutMs }: HandlerMatch): Run {
    return { handlerKey, occurrenceId, attempt, binding, event, settledTimeoutMs, maxAttempt: this.options.handlerAttempts };
  }
}

function claimRequest(occurrence: FailureOccurrence, matches: readonly HandlerMatch[]): ClaimRequest {
  return {
    occurrenceId: occurrence.id,
    snapshot: toSnapshot(occurrence),
    handlerKeys: matches.map((m) => m.binding.key),
    failedAttempt: failedAttempt(occurrence),
  };
}
