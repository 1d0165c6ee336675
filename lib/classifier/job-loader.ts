import { Job, Queue, raw2NextJobData } from 'bullmq';
import type { Redis } from 'ioredis';
import { traced, tracing } from '../diagnostics.js';
import { type RedisKeys, jobKey } from '../redis/redis-keys.js';

/**
 * Loads jobs as BullMQ `Job`s over the module's jobs connection. Loads issued in the same
 * tick travel in one pipeline (the connection auto-pipelines), and a job already being
 * loaded is not loaded again: a parent's root-cause walk joins the load of its failed child.
 */
export class JobLoader {
  private readonly queues = new Map<string, Queue>();
  private readonly loading = new Map<string, Promise<Job | undefined>>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** `prefix`: a parent or child may live under another prefix than the watched queues. */
  load(queueName: string, jobId: string, prefix = this.keys.prefix): Promise<Job | undefined> {
    const key = jobKey(prefix, queueName, jobId);
    let pending = this.loading.get(key);
    if (!pending) {
      const load = () => Job.fromId(this.queue(queueName, prefix), jobId);
      pending = traced(tracing.loadJob, () => ({ queueName, jobId }), load).finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    return pending;
  }

  /**
   * A job from its hash as a script returned it (HGETALL's flat list), not loaded here;
   * undefined when the list is empty (the job is gone). Decoded the way a Worker decodes
   * the job its fetch script returns (raw2NextJobData), so it is the `Job` a load gives
   * in every BullMQ version the module supports.
   */
  fromScriptReply(queueName: string, jobId: string, fields: unknown[]): Job | undefined {
    if (fields.length === 0) return undefined;
    const [json] = raw2NextJobData([fields]) as [Parameters<typeof Job.fromJSON>[1]];
    return Job.fromJSON(this.queue(queueName), json, jobId);
  }

  /**
   * A Queue object only to give loaded jobs a home: it shares the connection, never adds
   * jobs, and must not write the queue's meta (that would reset the user's settings, such
   * as the events stream's maxLen, to BullMQ's defaults).
   */
  private queue(queueName: string, prefix = this.keys.prefix): Queue {
    const key = `${prefix}:${queueName}`;
    let queue = this.queues.get(key);
    if (!queue) {
      queue = new Queue(queueName, { connection: this.redis, prefix, skipMetasUpdate: true });
      // Its connection is ours, whose outages are logged once already; BullMQ would print each error.
      queue.on('error', () => undefined);
      this.queues.set(key, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
    this.queues.clear();
  }
}
