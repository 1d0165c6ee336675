import { Logger } from '@nestjs/common';
import type { FailureOccurrence } from '../classifier/failure-occurrence.js';
import { failedAttempt, toSnapshot } from '../classifier/failure-occurrence.js';
import type { HandlerBinding, HandlerRegistry } from '../discovery/handler.registry.js';
import type { FlowFailureEvent } from '../interfaces/failure-events.interface.js';
import { claimMember } from '../redis/module-keys.js';
import type { ClaimRequest, ClaimStore, ForgetRequest, GrantedClaim, HeldClaim, ReadClaims } from './claim.store.js';
import type { DeadLetter } from './dead-letter.js';
import type { ReservationUse, WorkerReservations } from './worker-reservations.js';
import { within } from '../util/within.js';

export interface DispatcherOptions {
  handlerAttempts: number;
  handlerBackoffMs: number;
  concurrency: number;
  leaseMs: number;
  /** How long an occurrence no handler wanted is remembered, so the sweep does not load it again. */
  markerTtlMs: number;
}

/** Occurrences per claim script: a catch-up batch in a few round trips, none holding Redis for long. */
const CLAIMS_PER_CALL = 50;

/** A handler that wants an occurrence, with the event it gets. */
interface HandlerMatch {
  binding: HandlerBinding;
  event: FlowFailureEvent;
}

interface Run extends GrantedClaim, HandlerMatch {
  /** Replays run once; normal runs may retry up to handlerAttempts. */
  maxAttempt: number;
  done?: (result: RunResult) => void;
}

export interface RunResult {
  ok: boolean;
  error?: string;
}

/**
 * Runs each matching handler once per occurrence: claim, run, mark done; on a throw,
 * back off and run again while still holding the claim; in the end, a dead letter.
 * A handler never sees the job's Worker: runs are queued here and awaited by no source.
 */
export class FailureDispatcher {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly queued: Run[] = [];
  private readonly held = new Map<string, Run>();
  private readonly backoffTimers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  /** Outcomes of finished handlers being written; their claims stay held (and renewed) until then. */
  private readonly recording = new Set<Promise<void>>();
  private readonly renewTimer: NodeJS.Timeout;
  /** Claims of handlers that do not match being given back (ClaimStore.forget). */
  private readonly forgetting = new Set<Promise<void>>();
  /** Sources waiting for the backlog to fall below their limit. */
  private readonly roomWaiters: { limit: number; resolve: () => void }[] = [];
  private stopped = false;
  private renewing = false;

  constructor(
    private readonly claims: ClaimStore,
    private readonly registry: HandlerRegistry,
    private readonly options: DispatcherOptions,
    /** Failures this process's Workers reserved as they started the jobs: their handlers start before the claim. */
    private readonly reservations: WorkerReservations,
  ) {
    this.renewTimer = setInterval(() => void this.renew(), Math.max(50, Math.floor(options.leaseMs / 3)));
  }

  /** Runs still to start or in flight here; sources use it to hold back when the app is saturated. */
  get backlog(): number {
    return this.queued.length + this.running.size + this.recording.size;
  }

  /** Resolves once the backlog is below `limit` (at once if it is, or once stopped). */
  whenBacklogBelow(limit: number): Promise<void> {
    if (this.stopped || this.backlog < limit) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push({ limit, resolve }));
  }

  /** Nothing queued, running, being recorded or waiting to retry here. */
  get idle(): boolean {
    return (
      this.queued.length === 0 &&
      this.running.size === 0 &&
      this.recording.size === 0 &&
      this.forgetting.size === 0 &&
      this.backoffTimers.size === 0
    );
  }

  /**
   * Claims what is free for these occurrences and queues the runs. Occurrences whose claims
   * a stream read already took (`claimedWithRead`) are not claimed again: their matching
   * claims run, the others are forgotten. Resolves once the claims are recorded: true, or
   * false when stopped (nothing was recorded).
   */
  async dispatch(occurrences: readonly FailureOccurrence[], claimedWithRead: readonly ReadClaims[] = []): Promise<boolean> {
    if (this.stopped) {
      // Not to be run here any more: handed back, so that another replica takes them at once
      // (should that fail, their leases run out).
      await this.claims.lease(claimedWithRead.flatMap((r) => r.granted), 'release').catch(() => undefined);
      return false;
    }
    const taken = new Map(claimedWithRead.map((r) => [r.occurrenceId, r.granted]));
    const unclaimed = occurrences.filter((o) => !taken.has(o.id));
    const reserved = await this.reservedHere(unclaimed);
    const toClaim = unclaimed.filter((o) => reserved.get(o) !== 'run-now');
    const chunks: FailureOccurrence[][] = [];
    for (let from = 0; from < toClaim.length; from += CLAIMS_PER_CALL) chunks.push(toClaim.slice(from, from + CLAIMS_PER_CALL));
    const adopted = this.adopt(occurrences, taken);
    const runNow = unclaimed.filter((o) => reserved.get(o) === 'run-now');
    const started = runNow.length > 0 ? this.startReserved(runNow) : [];
    const claimed = chunks.map((chunk) => this.claimAndQueue(chunk, (o) => reserved.get(o) === 'claim-first'));
    const granted = [...adopted, ...(await Promise.all([started, ...claimed])).flat()];
    // A claim granted past its first attempt, outside our own retries, was someone else's.
    const takenOver = granted.filter((claim) => claim.attempt > 1).length;
    if (takenOver > 0) {
      this.logger.warn(
        `Took over ${takenOver} claim(s) whose holder stopped before finishing (an instance that crashed, stalled or closed); running them here`,
      );
    }
    return true;
  }

  /**
   * Forgets the claims of handlers that do not want the occurrence: taken by a read before it
   * was classified, whose holder stopped before forgetting them.
   */
  async forgetUnwanted(occurrence: FailureOccurrence, claims: readonly HeldClaim[]): Promise<void> {
    const { unwanted } = this.sortOut(occurrence, claims);
    if (unwanted.length === 0) return;
    await this.claims.forget([{ occurrenceId: occurrence.id, snapshot: toSnapshot(occurrence), handlerKeys: unwanted }], this.options.markerTtlMs);
  }

  /** Runs a dead letter's handler once more; a success clears the dead letter. */
  async replay(occurrence: FailureOccurrence, handlerKey: string): Promise<RunResult> {
    const target = this.matches(occurrence).find((m) => m.binding.key === handlerKey);
    if (!target) {
      return { ok: false, error: `handler ${handlerKey} is not declared in this app, or no longer matches` };
    }
    const request = { occurrenceId: occurrence.id, snapshot: toSnapshot(occurrence), handlerKeys: [handlerKey] };
    const granted = await this.claims.claim([request], { revive: true, markerTtlMs: this.options.markerTtlMs });
    if (granted.length === 0) return { ok: false, error: 'not a dead letter any more, or being run elsewhere' };
    return new Promise<RunResult>((resolve) => {
      this.enqueue({ ...granted[0], ...target, maxAttempt: granted[0].attempt, done: resolve });
    });
  }

  /** Stops taking work, waits up to timeoutMs for runs in flight, then hands every unfinished claim back. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    this.makeRoom();
    clearInterval(this.renewTimer);
    for (const timer of this.backoffTimers.values()) clearTimeout(timer);
    this.backoffTimers.clear();
    this.queued.length = 0;
    await within(
      timeoutMs,
      Promise.allSettled([...this.running, ...this.forgetting]).then(() => Promise.allSettled([...this.recording])),
    );
    const unfinished = [...this.held.values()];
    this.held.clear();
    if (unfinished.length > 0 && !(await within(timeoutMs, this.claims.lease(unfinished, 'release')))) {
      this.logger.warn(`Could not hand back ${unfinished.length} claim(s) in time; they expire after the lease`);
    }
  }

  /** `asReserver`: claims taken in this owner's name while its reservation lived are its own (ClaimStore.convert). */
  private async claimAndQueue(occurrences: readonly FailureOccurrence[], asReserver: (o: FailureOccurrence) => boolean): Promise<GrantedClaim[]> {
    const wanted = new Map(occurrences.map((o) => [o.id, this.unheldMatches(o)]));
    const requests = occurrences.map((occurrence) => claimRequest(occurrence, wanted.get(occurrence.id) ?? []));
    const reserver = occurrences.map(asReserver);
    const [granted, converted] = await Promise.all([
      this.claims.claim(requests.filter((_, i) => !reserver[i]), { markerTtlMs: this.options.markerTtlMs }),
      this.claims.convert(requests.filter((_, i) => reserver[i]), this.options.markerTtlMs),
    ]);
    granted.push(...converted);
    for (const claim of granted) {
      const match = wanted.get(claim.occurrenceId)?.find((m) => m.binding.key === claim.handlerKey);
      if (match) this.enqueue({ ...claim, ...match, maxAttempt: this.options.handlerAttempts });
    }
    return granted;
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
  private async startReserved(occurrences: readonly FailureOccurrence[]): Promise<GrantedClaim[]> {
    const wanted = occurrences.map((o) => ({ o, matches: this.unheldMatches(o) }));
    // Sent before the handlers start, so it is on the wire ahead of anything they send.
    const converting = this.claims.convert(
      wanted.map(({ o, matches }) => claimRequest(o, matches)),
      this.options.markerTtlMs,
    );
    const started: Run[] = [];
    for (const { o, matches } of wanted) {
      for (const match of matches) {
        const run: Run = { handlerKey: match.binding.key, occurrenceId: o.id, attempt: 1, ...match, maxAttempt: this.options.handlerAttempts };
        this.enqueue(run);
        started.push(run);
      }
    }
    let ours: GrantedClaim[];
    try {
      ours = await converting;
    } catch (error) {
      this.logger.error(
        `Started ${started.length} handler(s) on this instance's reservations but could not record their claims: ${message(error)}; ` +
          'should the reservations lapse before Redis answers, another instance may run them again',
      );
      return [];
    }
    const confirmed = new Set(ours.map((c) => claimMember(c.handlerKey, c.occurrenceId)));
    for (const run of started) {
      if (confirmed.has(claimMember(run.handlerKey, run.occurrenceId))) continue;
      this.logger.error(
        `${run.binding.name} started for ${run.occurrenceId} on this instance's reservation, but another instance ` +
          'claimed it after the reservation lapsed (Redis answered too late): it may run twice',
      );
    }
    return ours;
  }

  /**
   * Runs the claims a read took that match, and forgets the rest (with the claims of an
   * occurrence the classifier dropped: its job was retried or removed since).
   */
  private adopt(occurrences: readonly FailureOccurrence[], taken: ReadonlyMap<string, GrantedClaim[]>): GrantedClaim[] {
    const granted: GrantedClaim[] = [];
    const forget: ForgetRequest[] = [];
    const classified = new Set<string>();
    for (const occurrence of occurrences) {
      const claims = taken.get(occurrence.id);
      if (!claims) continue;
      classified.add(occurrence.id);
      // A claim already running here (its lease lapsed and the read took it again) runs once.
      const fresh = claims.filter((claim) => !this.held.has(claimMember(claim.handlerKey, claim.occurrenceId)));
      const { matching, unwanted } = this.sortOut(occurrence, fresh);
      for (const { claim, match } of matching) {
        this.enqueue({ ...claim, ...match, maxAttempt: this.options.handlerAttempts });
        granted.push(claim);
      }
      forget.push({ occurrenceId: occurrence.id, snapshot: toSnapshot(occurrence), handlerKeys: unwanted });
    }
    for (const [occurrenceId, claims] of taken) {
      if (!classified.has(occurrenceId)) forget.push({ occurrenceId, snapshot: '', handlerKeys: claims.map((c) => c.handlerKey) });
    }
    // Not awaited: the occurrences are recorded already, and the reader goes on. Should it
    // fail, the unwanted claims' leases run out and the reaper forgets them; a missing
    // snapshot is rebuilt from the job.
    const forgetting: Promise<void> = this.claims
      .forget(forget, this.options.markerTtlMs)
      .catch((error: unknown) => {
        this.logger.warn(`Could not give back the claims of handlers that do not match (their leases run out instead): ${message(error)}`);
      })
      .finally(() => this.forgetting.delete(forgetting));
    this.forgetting.add(forgetting);
    return granted;
  }

  /** The claims whose handler the occurrence matches (with the match), and the handler keys of the rest. */
  private sortOut<C extends HeldClaim>(occurrence: FailureOccurrence, claims: readonly C[]) {
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
    return this.matches(occurrence).filter((m) => !this.held.has(claimMember(m.binding.key, occurrence.id)));
  }

  private matches(occurrence: FailureOccurrence): HandlerMatch[] {
    const found: HandlerMatch[] = [];
    const parent = occurrence.parentFailed;
    if (parent) {
      const subject = { kind: parent.kind, queueName: parent.queueName, jobName: parent.jobName, causedByChild: parent.causedByChild };
      for (const binding of this.registry.match(subject)) found.push({ binding, event: parent });
    }
    const child = occurrence.childFailed;
    if (child) {
      const subject = { kind: child.kind, queueName: child.queueName, jobName: child.jobName, parentQueueName: child.parent.queueName };
      for (const binding of this.registry.match(subject)) found.push({ binding, event: child });
    }
    return found;
  }

  private enqueue(run: Run): void {
    if (this.stopped) return;
    this.held.set(claimMember(run.handlerKey, run.occurrenceId), run);
    this.queued.push(run);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.options.concurrency && this.queued.length > 0) {
      const run = this.queued.shift() as Run;
      const execution = this.execute(run).finally(() => {
        this.running.delete(execution);
        this.pump();
        this.makeRoom();
      });
      this.running.add(execution);
    }
  }

  private async execute(run: Run): Promise<void> {
    if (run.attempt > run.maxAttempt) {
      // The process that held the last allowed attempt died during it.
      await this.bury(run, 'the process running this handler stopped before it finished');
      return;
    }
    let failure: unknown;
    try {
      await run.binding.invoke(run.event);
    } catch (error) {
      failure = error ?? new Error('handler threw a nullish value');
    }
    // The handler's slot is free once it returns: its outcome is written beside the next runs,
    // not before them (a catch-up would otherwise wait one round trip per handler, 50 at a time).
    const recording = this.record(run, failure);
    this.recording.add(recording);
    void recording.finally(() => {
      this.recording.delete(recording);
      this.makeRoom();
    });
  }

  private makeRoom(): void {
    for (let i = this.roomWaiters.length - 1; i >= 0; i--) {
      const waiter = this.roomWaiters[i];
      if (this.stopped || this.backlog < waiter.limit) {
        this.roomWaiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  private async record(run: Run, failure: unknown): Promise<void> {
    const member = claimMember(run.handlerKey, run.occurrenceId);
    try {
      if (failure === undefined) {
        // Still held (and renewed) until the done mark is in: a slow Redis must not let the lease lapse.
        if (!(await this.claims.settle(run, { outcome: 'done' }))) this.warnLost(run);
        this.held.delete(member);
        run.done?.({ ok: true });
      } else if (run.attempt >= run.maxAttempt) {
        await this.bury(run, message(failure), failure);
      } else {
        await this.retryLater(run, failure);
      }
    } catch (error) {
      // Redis failed us while settling: keep nothing; the lease expires and another run settles it.
      this.held.delete(member);
      this.logger.warn(`Could not record the outcome of ${run.binding.name} for ${run.occurrenceId}: ${message(error)}`);
      run.done?.({ ok: false, error: message(error) });
    }
  }

  private async retryLater(run: Run, failure: unknown): Promise<void> {
    const member = claimMember(run.handlerKey, run.occurrenceId);
    const delay = this.options.handlerBackoffMs * 2 ** (run.attempt - 1);
    const next = run.attempt + 1;
    this.logger.warn(
      `${run.binding.name} threw for occurrence ${run.occurrenceId} (attempt ${run.attempt}/${run.maxAttempt}): ` +
        `${message(failure)}; trying again in ${delay} ms`,
    );
    if (!(await this.claims.settle(run, { outcome: 'retry', nextAttempt: next }))) {
      this.held.delete(member);
      this.warnLost(run);
      return;
    }
    if (this.stopped) return; // stop() hands the claim back; another instance retries it
    const timer = setTimeout(() => {
      this.backoffTimers.delete(member);
      this.queued.push({ ...run, attempt: next });
      this.pump();
    }, delay);
    this.backoffTimers.set(member, timer);
  }

  private async bury(run: Run, lastError: string, failure?: unknown): Promise<void> {
    const member = claimMember(run.handlerKey, run.occurrenceId);
    const record: DeadLetter = {
      id: member,
      occurrenceId: run.occurrenceId,
      kind: run.binding.kind,
      handler: run.binding.name,
      queueName: run.event.queueName,
      jobId: run.event.jobId,
      lastError,
      attempts: run.attempt,
      failedAt: Date.now(),
    };
    this.logger.error(
      `${run.binding.name} failed for occurrence ${run.occurrenceId} after ${run.attempt} attempts; kept as dead letter ${member}: ${lastError}`,
      failure instanceof Error ? failure.stack : undefined,
    );
    if (!(await this.claims.settle(run, { outcome: 'dead', record: JSON.stringify(record) }))) this.warnLost(run);
    this.held.delete(member);
    run.done?.({ ok: false, error: lastError });
  }

  /** Renews every held claim now (after a Redis outage, before others may take them). */
  async renew(): Promise<void> {
    const held = [...this.held.values()];
    // One renewal at a time: during an outage they would queue up behind each other.
    if (held.length === 0 || this.renewing) return;
    this.renewing = true;
    try {
      const lost = await this.claims.lease(held, 'renew');
      for (const claim of lost) this.forget(claim);
    } catch (error) {
      this.logger.warn(`Could not renew ${held.length} claims: ${message(error)}`);
    } finally {
      this.renewing = false;
    }
  }

  /** Another replica took a claim whose lease we failed to renew: it runs there now. */
  private forget(claim: HeldClaim): void {
    const member = claimMember(claim.handlerKey, claim.occurrenceId);
    const run = this.held.get(member);
    this.held.delete(member);
    clearTimeout(this.backoffTimers.get(member));
    this.backoffTimers.delete(member);
    const index = this.queued.findIndex((r) => claimMember(r.handlerKey, r.occurrenceId) === member);
    if (index >= 0) this.queued.splice(index, 1);
    if (run) this.warnLost(run);
  }

  private warnLost(run: Run): void {
    this.logger.warn(`Lost the claim of ${run.binding.name} for ${run.occurrenceId} (lease expired); another instance owns it now`);
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

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
