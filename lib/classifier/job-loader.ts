import { Job, Queue, raw2NextJobData } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { bullConnection } from '../redis/redis-connections.js';
import { traced, tracing } from '../diagnostics.js';
import { type RedisKeys, jobKey } from '../redis/redis-keys.js';

/** Stored job fields that BullMQ decodes with JSON.parse and that fail the whole decode when corrupt. */
const JSON_FIELDS = ['data', 'opts', 'progress', 'parent'] as const;

/**
 * Loads jobs as BullMQ `Job`s over the module's jobs connection. Loads issued in the same
 * tick travel in one pipeline (the connection auto-pipelines), and a job already being
 * loaded is not loaded again: a parent's root-cause walk joins the load of its failed child.
 *
 * A stored job whose JSON fields do not parse (written by hand, by another tool, or cut
 * short) is decoded without them, and `unreadableFields` names them: one bad job must not
 * stop the failures around it.
 */
export class JobLoader {
  private readonly queues = new Map<string, Queue>();
  private readonly loading = new Map<string, Promise<Job | undefined>>();
  private readonly unreadable = new WeakMap<Job, string[]>();

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keys: RedisKeys,
  ) {}

  /** `prefix`: a parent or child may live under another prefix than the watched queues. */
  load(queueName: string, jobId: string, prefix = this.keys.prefix): Promise<Job | undefined> {
    const key = jobKey(prefix, queueName, jobId);
    let pending = this.loading.get(key);
    if (!pending) {
      const load = async () => this.decode(this.queue(queueName, prefix), jobId, toFlat(await this.redis.hgetall(key)));
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
    return this.decode(this.queue(queueName), jobId, fields);
  }

  /** The stored fields this job was decoded without because they are not valid JSON; undefined when all parsed. */
  unreadableFields(job: Job): string[] | undefined {
    return this.unreadable.get(job);
  }

  /**
   * A job from its stored hash (HGETALL's flat list), decoded the way a Worker decodes the
   * job its fetch script returns (raw2NextJobData), so it is the `Job` BullMQ itself would
   * build in every version the module supports. @throws when even the readable fields do not make a job
   */
  private decode(queue: Queue, jobId: string, fields: readonly unknown[]): Job | undefined {
    if (fields.length === 0) return undefined;
    try {
      return toJob(queue, jobId, fields);
    } catch {
      const hash = new Map<string, unknown>();
      for (let i = 0; i + 1 < fields.length; i += 2) hash.set(String(fields[i]), fields[i + 1]);
      const unreadable = JSON_FIELDS.filter((field) => hash.has(field) && !parses(hash.get(field)));
      for (const field of unreadable) hash.delete(field);
      const job = toJob(queue, jobId, [...hash].flat());
      this.unreadable.set(job, unreadable.length > 0 ? unreadable : ['(unknown)']);
      return job;
    }
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
      queue = new Queue(queueName, { connection: bullConnection(this.redis), prefix, skipMetasUpdate: true });
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

function toJob(queue: Queue, jobId: string, fields: readonly unknown[]): Job {
  const [json] = raw2NextJobData([fields]) as [Parameters<typeof Job.fromJSON>[1]];
  return Job.fromJSON(queue, json, jobId);
}

function toFlat(hash: Record<string, string>): string[] {
  return Object.entries(hash).flat();
}

function parses(value: unknown): boolean {
  try {
    JSON.parse(String(value));
    return true;
  } catch {
    return false;
  }
}
