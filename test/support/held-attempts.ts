import { type Job, Worker } from 'bullmq';
import { type TestRedis, redisConnection, waitUntil } from './harness.js';
import type { JobAttempt } from './internals.js';

/** One job's attempt, running now in a real Worker, that the test ends when it likes. */
export interface HeldAttempt {
  job: Job;
  /** The attempt running: `attemptsStarted` is BullMQ's count (`ats`) with this one. */
  attempt: JobAttempt;
  /** Ends it: the processor throws, and this is the job's last attempt; resolves with its `finishedOn` once the job is failed. */
  fail(): Promise<number>;
}

/**
 * Jobs of one queue whose attempts a real BullMQ Worker starts and holds mid-run until the
 * test fails them: the state "an attempt is running" and then "it failed for good" as
 * BullMQ writes it, instead of job hashes written by hand.
 */
export class HeldAttempts {
  private readonly held = new Map<string, () => void>();
  private readonly worker: Worker;

  constructor(
    private readonly redis: TestRedis,
    readonly queueName: string,
  ) {
    this.worker = new Worker<{ holdAttempt: number }>(
      queueName,
      async (job) => {
        if (job.attemptsStarted < job.data.holdAttempt) throw new Error('an earlier attempt failed');
        await new Promise<void>((resolve) => this.held.set(job.id as string, resolve));
        throw new Error('failed');
      },
      { connection: redisConnection(), prefix: redis.prefix, concurrency: 100 },
    );
  }

  /**
   * A job whose attempt number `attempt` (the earlier ones failed at once) is running now;
   * with `parentQueue`, the child of a parent there that it fails (failParentOnFailure).
   */
  async running(attempt = 1, parentQueue?: string): Promise<HeldAttempt> {
    const queue = this.redis.queue(this.queueName);
    const data = { holdAttempt: attempt };
    const job = parentQueue
      ? ((
          await this.redis.flows.add({
            name: 'settle',
            queueName: parentQueue,
            children: [{ name: 'charge', queueName: this.queueName, data, opts: { attempts: attempt, failParentOnFailure: true } }],
          })
        ).children?.[0].job as Job)
      : await queue.add('charge', data, { attempts: attempt });
    const jobId = job.id as string;
    await waitUntil(`attempt ${attempt} of job ${jobId} running`, () => this.held.has(jobId));
    return {
      job,
      attempt: { queueName: this.queueName, jobId, attemptsStarted: attempt },
      fail: async () => {
        this.held.get(jobId)?.();
        await waitUntil(`job ${jobId} failed`, async () => (await queue.getJobState(jobId)) === 'failed');
        return (await queue.getJob(jobId))?.finishedOn as number;
      },
    };
  }

  /** Fails whatever is still held, and stops the Worker. */
  async close(): Promise<void> {
    for (const release of this.held.values()) release();
    await this.worker.close();
  }
}
