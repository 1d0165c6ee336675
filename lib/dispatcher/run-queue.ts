import { Logger } from '@nestjs/common';
import type { ClaimStore } from '../claims/claim.store.js';
import { claimMember } from '../claims/formats.js';
import type { DeadLetterJobData } from '../dead-letters/dead-letter.js';
import { MESSAGES } from '../flow-failure.messages.js';
import { describeError } from '../util/describe-error.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { Run } from './run.js';
import { type NextStep, nextStep } from './run-rules.js';
import type { Telemetry } from '../telemetry/telemetry.js';

export interface RunQueueOptions {
  concurrency: number;
  handlerBackoffMs: number;
  /** A parked retry is anyone's this long after its backoff (its owner died before taking it back). */
  leaseMs: number;
  /** An attempt still running after this long has failed: its slot is freed and its signal aborted. */
  handlerTimeoutMs: number;
  /** Runs queued or in flight (with those promised to deliveries under way) above which sources wait. */
  backlogLimit: number;
}

/**
 * The runs of this instance: at most `concurrency` handlers at once, the rest queued; each
 * outcome settled in Redis, a throw tried again after a doubling backoff while the claim
 * stays held, and a dead letter after the last attempt (run-rules.ts). A handler never
 * sees the job's Worker: nothing awaits a run but this queue. Sources wait here for room
 * (`whenRoom`) when the handlers are behind.
 */
export class RunQueue {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly queued: Run[] = [];
  private readonly running = new Set<Promise<void>>();
  /** Outcomes of finished handlers being written; their claims stay held (and renewed) until then. */
  private readonly settling = new Set<Promise<void>>();
  /** Runs whose claims are parked in Redis for their backoff, and the timers that take them back. */
  private readonly backingOff = new Map<string, { run: Run; timer: NodeJS.Timeout }>();
  private readonly roomWaiters: (() => void)[] = [];
  /** The runs in flight: each one's signal, aborted at shutdown, and how to stop watching it (see `abandon`). */
  private readonly inFlight = new Map<LazySignal, (reason: unknown) => void>();
  /** Runs that deliveries under way may add: counted against the limit before they are claimed. */
  private promised = 0;
  private stopped = false;

  constructor(
    private readonly claims: ClaimStore,
    private readonly leases: LeaseKeeper,
    private readonly options: RunQueueOptions,
    /** Where a run that used its last attempt is kept. */
    private readonly deadLetters: { add(letter: DeadLetterJobData): Promise<void> },
    private readonly telemetry: Pick<Telemetry, 'attempt'>,
    /** Takes a parked retry back, and queues it as its next attempt. */
    private readonly resume: (run: Run) => void,
  ) {}

  /** Runs still to start or in flight here, and those promised to deliveries under way. */
  get backlog(): number {
    return this.queued.length + this.running.size + this.settling.size + this.promised;
  }

  /**
   * How many more runs this instance should take now: it claims what it can run soon, and
   * leaves the rest to other replicas. A run whose handler returned is no longer work for
   * this instance, only an outcome on its way to Redis: those count only past a second
   * limit (a Redis that is slow to settle still stops the sources), so that a catch-up's
   * next read does not wait for the last batch's outcomes, whose reply waits in Redis
   * behind that very read's script.
   */
  get room(): number {
    const settlingLetOff = Math.min(this.settling.size, this.options.backlogLimit);
    return Math.max(0, this.options.backlogLimit - (this.backlog - settlingLetOff));
  }

  /** Nothing queued, running, being settled or waiting to retry. */
  get idle(): boolean {
    return this.backlog === 0 && this.backingOff.size === 0;
  }

  /** Resolves once there is room (at once if there is, or once stopped). */
  whenRoom(): Promise<void> {
    if (this.stopped || this.room > 0) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** A delivery of up to `count` runs begins: they count against the limit until `work` has queued them. */
  async promise<T>(count: number, work: () => Promise<T>): Promise<T> {
    const release = this.hold(count);
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** Counts `count` runs against the limit until the returned release is called (once; later calls do nothing). */
  hold(count: number): () => void {
    this.promised += count;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.promised -= count;
      this.makeRoom();
    };
  }

  /** Queues a run whose claim this instance holds. */
  enqueue(run: Run): void {
    if (this.stopped) return;
    this.leases.hold(run);
    this.queued.push(run);
    this.pump();
  }

  /** Another instance took the run's claim over: it runs there now, not here. */
  withdraw(run: Run): void {
    const member = claimMember(run.handlerKey, run.occurrenceId);
    clearTimeout(this.backingOff.get(member)?.timer);
    this.backingOff.delete(member);
    const index = this.queued.findIndex((r) => claimMember(r.handlerKey, r.occurrenceId) === member);
    if (index >= 0) this.queued.splice(index, 1);
  }

  /** The runs waiting for their backoff, their claims parked in Redis: handed back at shutdown, so that another instance takes them when due. */
  get parked(): Run[] {
    return [...this.backingOff.values()].map(({ run }) => run);
  }

  /** Starts nothing more and resolves once the handlers in flight have returned and their outcomes are written. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.makeRoom();
    // Handlers that listen stop now; their claims are handed back, not counted as failed attempts.
    for (const signal of this.inFlight.keys()) signal.abort(new HandlerAbortedError('the app is shutting down'));
    for (const { timer } of this.backingOff.values()) clearTimeout(timer);
    this.queued.length = 0;
    await Promise.allSettled([...this.running]);
    await Promise.allSettled([...this.settling]);
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
    // Past the last allowed attempt: the process that held it died during it.
    const span = run.attempt > run.maxAttempt ? undefined : this.telemetry.attempt(run.binding.name, run.event, run.attempt);
    const failure = span ? await this.attempt(run) : new Error(MESSAGES.holderStopped());
    const next = nextStep(run.attempt, run.maxAttempt, failure, this.options.handlerBackoffMs);
    span?.end(next.step === 'done' ? 'ok' : next.step === 'dead' ? 'dead' : failure instanceof HandlerTimeoutError ? 'timeout' : 'error', failure);
    // The handler's slot is free once it returns: its outcome is written beside the next runs,
    // not before them (a catch-up would otherwise wait one round trip per handler).
    const settling = this.settle(run, failure, next);
    this.settling.add(settling);
    void settling.finally(() => {
      this.settling.delete(settling);
      this.makeRoom();
    });
  }

  /**
   * Runs the handler once: resolves with what it threw (undefined when it succeeded), or
   * with a timeout error once it has run `handlerTimeoutMs`. A handler that ignores its
   * aborted signal runs on unwatched; its slot is free and its outcome ignored.
   */
  private async attempt(run: Run): Promise<unknown> {
    const signal = new LazySignal();
    let timer: NodeJS.Timeout | undefined;
    const unwatched = new Promise<unknown>((resolve) => {
      this.inFlight.set(signal, resolve);
      timer = setTimeout(() => {
        const error = new HandlerTimeoutError(MESSAGES.handlerTimedOut(this.options.handlerTimeoutMs));
        signal.abort(error);
        resolve(error);
      }, this.options.handlerTimeoutMs);
    });
    const context = {
      attempt: run.attempt,
      get signal() {
        return signal.get();
      },
    };
    const ran = run.binding.invoke(run.event, context).then(
      () => undefined,
      (error: unknown) => error ?? new Error('handler threw a nullish value'),
    );
    try {
      return await Promise.race([ran, unwatched]);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(signal);
    }
  }

  /**
   * After `stop`, once the shutdown budget is spent and the claims are handed back: the
   * handlers still running ignore their aborted signal, and run on unwatched, as after a
   * timeout. Nothing of theirs is left waiting here (their timeout timers above all).
   */
  abandon(): void {
    for (const unwatch of this.inFlight.values()) unwatch(new HandlerAbortedError('the app has shut down'));
  }

  private makeRoom(): void {
    if (this.roomWaiters.length === 0 || (!this.stopped && this.room <= 0)) return;
    for (const resolve of this.roomWaiters.splice(0)) resolve();
  }

  private async settle(run: Run, failure: unknown, next: NextStep): Promise<void> {
    // Stopped mid-run by shutdown: not an attempt that failed; the lease keeper hands the claim back.
    if (failure !== undefined && this.stopped) return;
    try {
      if (next.step === 'done') {
        // Still held (and renewed) until the done mark is in: a slow Redis must not let the lease lapse.
        if (!(await this.claims.settle(run, { outcome: 'done' }))) this.warnLost(run);
        this.leases.unhold(run);
        run.done?.({ ok: true });
      } else if (next.step === 'dead') {
        await this.deadLetter(run, next.lastError, failure);
      } else {
        this.logger.warn(MESSAGES.retrying(run.binding.name, run.occurrenceId, run.attempt, run.maxAttempt, failure, next.delayMs));
        await this.retryLater(run, next.delayMs);
      }
    } catch (error) {
      // Redis failed us while settling: keep nothing; the lease expires and another run settles it.
      this.leases.unhold(run);
      this.logger.warn(MESSAGES.outcomeNotRecorded(run.binding.name, run.occurrenceId, error));
      run.done?.({ ok: false, error: describeError(error) });
    }
  }

  /**
   * Parks the claim for the backoff, with the attempts made so far: a process that dies
   * meanwhile leaves it for any replica once backoff and lease are over, and the attempt
   * that follows counts as the next. This process takes it back as the backoff ends.
   */
  private async retryLater(run: Run, delayMs: number): Promise<void> {
    const claim = { handlerKey: run.handlerKey, occurrenceId: run.occurrenceId, delayMs: delayMs + this.options.leaseMs, attemptsMade: run.attempt };
    const [parked] = await this.claims.park([claim]);
    this.leases.unhold(run);
    if (!parked) return this.warnLost(run);
    const member = claimMember(run.handlerKey, run.occurrenceId);
    const timer = setTimeout(() => {
      this.backingOff.delete(member);
      this.resume(run);
    }, delayMs);
    this.backingOff.set(member, { run, timer });
    if (this.stopped) clearTimeout(timer); // handed back with the others at shutdown
  }

  /** Kept as a dead letter first (idempotent), then settled dead: a crash between the two runs it once more, as the last attempt. */
  private async deadLetter(run: Run, lastError: string, failure?: unknown): Promise<void> {
    const id = claimMember(run.handlerKey, run.occurrenceId);
    const { job: _job, ...event } = run.event;
    this.logger.error(
      MESSAGES.deadLetter(run.binding.name, run.occurrenceId, run.attempt, id, lastError),
      failure instanceof Error ? failure.stack : undefined,
    );
    await this.deadLetters.add({
      id,
      handlerKey: run.handlerKey,
      occurrenceId: run.occurrenceId,
      kind: run.binding.kind,
      handler: run.binding.name,
      queueName: run.event.queueName,
      jobId: run.event.jobId,
      attempts: run.attempt,
      lastError,
      event,
    });
    if (!(await this.claims.settle(run, { outcome: 'dead' }))) this.warnLost(run);
    this.leases.unhold(run);
    run.done?.({ ok: false, error: lastError });
  }

  private warnLost(run: Run): void {
    this.logger.warn(MESSAGES.claimLost(run.binding.name, run.occurrenceId));
  }
}

/** The reason a run's signal is aborted: the app shutting down, or (HandlerTimeoutError) its timeout. */
export class HandlerAbortedError extends Error {
  override readonly name: string = 'HandlerAbortedError';
}

export class HandlerTimeoutError extends HandlerAbortedError {
  override readonly name = 'HandlerTimeoutError';
}

/**
 * A run's abort signal, made only if its handler reads it: most handlers never do, and an
 * AbortController per attempt was a measurable part of a catch-up's CPU.
 */
class LazySignal {
  private controller?: AbortController;
  private reason?: unknown;
  private aborted = false;

  get(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.aborted && !this.controller.signal.aborted) this.controller.abort(this.reason);
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}
