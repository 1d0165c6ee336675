import { Logger } from '@nestjs/common';
import { type Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { bullConnection } from '../redis/redis-connections.js';
import type { ClaimStore } from '../claims/claim.store.js';
import { parseClaimMember } from '../claims/formats.js';
import type { RunResult } from '../dispatcher/run.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { RedisKeys } from '../redis/redis-keys.js';
import type { DeadLetter, DeadLetterJobData } from './dead-letter.js';

/** Replays that finished kept as completed jobs (for the dashboard's record, and the caller of `replay`). */
const COMPLETED_KEPT = { age: 24 * 60 * 60, count: 1000 };
/** How often dead letters older than their retention are removed. */
const CLEAN_EVERY_MS = 60 * 60 * 1000;
const CLEAN_BATCH = 1000;
const POLL_MS = 50;
/** Dead letters the per-handler count reads (a metric must not read an unbounded list). */
const COUNTED = 1000;

export interface DeadLetterQueueOptions {
  /** Dead letters older than this are removed. */
  retentionMs: number;
  /** How long `replay` waits for the replay's outcome. */
  replayTimeoutMs: number;
}

/**
 * The dead letters, as jobs of a BullMQ queue the module owns, so that an operator sees and
 * acts on them in the dashboard the team already runs (bull-board): a dead letter is a
 * failed job whose data is the event and whose failedReason is the last error; retrying
 * it replays the handler once, through the claim rules (a replay never runs a handler that
 * completed that occurrence); removing it discards the dead letter.
 *
 * A dead letter arrives as a new job, which this queue's Worker fails at once: a failed job
 * is what dashboards offer to retry. A job retried from failed has attempts made, so the
 * Worker replays it.
 */
export class DeadLetterQueue {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly queue: Queue<DeadLetterJobData>;
  private worker?: Worker<DeadLetterJobData>;
  private cleaner?: NodeJS.Timeout;
  private workerErrors = 0;

  constructor(
    private readonly connection: Redis | Cluster,
    private readonly keys: RedisKeys,
    private readonly claims: ClaimStore,
    /** Runs the handler of a dead letter once more. */
    private readonly replayer: (letter: DeadLetterJobData) => Promise<RunResult>,
    private readonly options: DeadLetterQueueOptions,
  ) {
    this.queue = new Queue(keys.deadLetterQueue, { connection: bullConnection(connection), prefix: keys.prefix });
    this.queue.on('error', () => undefined); // its connection is the module's, whose trouble is logged once already
  }

  start(): void {
    this.worker = new Worker<DeadLetterJobData>(this.queue.name, (job) => this.process(job), {
      connection: bullConnection(this.connection),
      prefix: this.queue.opts.prefix,
      concurrency: 5,
    });
    this.worker.on('error', (error) => {
      if (this.workerErrors++ === 0) this.logger.warn(MESSAGES.deadLetterWorkerFailed(error));
    });
    this.worker.on('ready', () => (this.workerErrors = 0));
    void this.clean();
    this.cleaner = setInterval(() => void this.clean(), CLEAN_EVERY_MS);
  }

  /**
   * Keeps a dead letter: one job per handler and occurrence. A replay that failed finds its
   * job there already (being replayed): its data is brought up to date (attempts, error).
   */
  async add(letter: DeadLetterJobData): Promise<void> {
    const job = await this.queue.add(letter.handler, letter, {
      jobId: jobIdOf(letter.id),
      attempts: 1,
      removeOnComplete: COMPLETED_KEPT,
      removeOnFail: false,
    });
    await job.updateData(letter);
  }

  /** Dead letters, oldest first. */
  async list(offset: number, limit: number): Promise<DeadLetter[]> {
    const jobs = await this.queue.getJobs(['failed'], offset, offset + limit - 1, true);
    return jobs.filter((job): job is Job<DeadLetterJobData> => job !== undefined).map(toDeadLetter);
  }

  count(): Promise<number> {
    return this.queue.getFailedCount();
  }

  /**
   * Dead letters by handler (`Class.method`, the job's name), over the oldest COUNTED of
   * them: read at every metric collection, so it reads names only, never the events.
   */
  async countByHandler(): Promise<Map<string, number>> {
    const name = this.queue.name;
    const ids = await this.connection.zrange(this.keys.failedSet(name), '0', String(COUNTED - 1));
    const names = await Promise.all(ids.map((id) => this.connection.hget(this.keys.job(name, id), 'name')));
    const counts = new Map<string, number>();
    for (const handler of names) if (handler) counts.set(handler, (counts.get(handler) ?? 0) + 1);
    return counts;
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    const job = await this.queue.getJob(jobIdOf(id));
    return job && (await job.isFailed()) ? toDeadLetter(job) : undefined;
  }

  /** Retries the dead letter's job and waits for its outcome: the replay, in whichever instance's Worker takes it. */
  async replay(id: string): Promise<RunResult> {
    const job = await this.queue.getJob(jobIdOf(id));
    if (!job || !(await job.isFailed())) return { ok: false, error: MESSAGES.noDeadLetter(id) };
    await job.retry('failed');
    const deadline = performance.now() + this.options.replayTimeoutMs;
    while (performance.now() < deadline) {
      const state = await this.queue.getJobState(job.id as string);
      if (state === 'completed' || state === 'failed') {
        const done = await this.queue.getJob(job.id as string);
        if (state === 'failed') return { ok: false, error: done?.failedReason ?? '' };
        return (done?.returnvalue as RunResult | undefined) ?? { ok: true };
      }
      if (state === 'unknown') return { ok: false, error: MESSAGES.noDeadLetter(id) };
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return { ok: false, error: MESSAGES.replayStillRunning(id, this.options.replayTimeoutMs) };
  }

  /** Removes the dead letter; its handler never runs again for that occurrence. @returns false when there was none */
  async discard(id: string): Promise<boolean> {
    const claim = parseClaimMember(id);
    const job = await this.queue.getJob(jobIdOf(id));
    if (!claim || !job || !(await job.isFailed())) return false;
    await job.remove();
    await this.claims.discard(claim);
    return true;
  }

  /**
   * Closes the Worker without waiting for its jobs: the dispatcher has stopped by now and
   * handed back the claims of the replays it ran, which will not end here. Waiting for them
   * (or, with Redis gone, for Redis) would outlast the shutdown budget and leave the Worker
   * half closed, its timers running for ever. A replay's job left active is moved back by
   * BullMQ's stalled check, and replayed by whichever instance takes it.
   */
  async close(): Promise<void> {
    clearInterval(this.cleaner);
    await this.worker?.close(true);
    await this.queue.close();
  }

  /** @returns what the replay did, as the job's return value; throws (the job fails again) when it failed */
  private async process(job: Job<DeadLetterJobData>): Promise<RunResult> {
    // Just arrived: failed at once, so that it waits among the failed jobs for an operator.
    if (job.attemptsMade === 0) throw new UnrecoverableError(job.data.lastError);
    const result = await this.replayer(job.data);
    // Nothing to replay (done already, or running elsewhere): no longer a dead letter here.
    if (!result.ok && !result.skipped) throw new UnrecoverableError(result.error ?? 'the replay failed');
    return result;
  }

  private async clean(): Promise<void> {
    try {
      while ((await this.queue.clean(this.options.retentionMs, CLEAN_BATCH, 'failed')).length === CLEAN_BATCH);
    } catch (error) {
      this.logger.warn(MESSAGES.deadLetterCleanFailed(error));
    }
  }
}

/** A dead letter's id as a BullMQ job id: BullMQ refuses most ids with ':'. */
function jobIdOf(id: string): string {
  return encodeURIComponent(id);
}

function toDeadLetter(job: Job<DeadLetterJobData>): DeadLetter {
  const { id, occurrenceId, kind, handler, queueName, jobId, attempts, event } = job.data;
  return { id, occurrenceId, kind, handler, queueName, jobId, attempts, event, lastError: job.failedReason ?? job.data.lastError, failedAt: job.finishedOn ?? job.timestamp };
}
