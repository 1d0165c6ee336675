import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { MESSAGES } from '../flow-failure.messages.js';
import type { RedisKeys } from '../redis/redis-keys.js';
import { describeError } from '../util/describe-error.js';
import type { FailureSignal } from './failure-signal.js';

/** Jobs remembered as reported, so each is logged once per process. */
const REMEMBERED = 10_000;
/** Unclassifiable failures kept in Redis for operators, newest first. */
const KEPT = 1000;

/** A failure the module could not classify, as kept for operators. */
export interface UnclassifiedFailure {
  queueName: string;
  jobId: string;
  source: string;
  error: string;
  /** When it was seen, ms since the epoch. */
  at: number;
}

/**
 * Failed jobs whose stored data is broken: each is logged once, naming its queue and id,
 * and one that cannot be classified at all is kept in a capped Redis list
 * (`FlowFailureService.getUnclassifiedFailures()`), so that it neither stops the failures
 * around it nor vanishes unseen.
 */
export class BadJobs {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly reported = new Set<string>();

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keys: RedisKeys,
  ) {}

  /** Delivered without `event.job`: some stored fields of the job are not valid JSON. */
  unreadable(queueName: string, jobId: string, fields: readonly string[]): void {
    if (this.firstTime(`unreadable:${queueName}:${jobId}`)) this.logger.warn(MESSAGES.jobUnreadable(queueName, jobId, fields));
  }

  /** Not delivered: classifying it threw. Kept for an operator; never retried here. */
  async unclassifiable(signal: FailureSignal, error: unknown): Promise<void> {
    if (!this.firstTime(`unclassifiable:${signal.queueName}:${signal.jobId}`)) return;
    this.logger.error(MESSAGES.jobUnclassifiable(signal.queueName, signal.jobId, error));
    const record: UnclassifiedFailure = { queueName: signal.queueName, jobId: signal.jobId, source: signal.source, error: describeError(error), at: Date.now() };
    await this.redis.lpush(this.keys.unclassified, JSON.stringify(record));
    await this.redis.ltrim(this.keys.unclassified, 0, KEPT - 1);
  }

  /** The failures kept as unclassifiable, newest first. */
  async list(offset: number, limit: number): Promise<UnclassifiedFailure[]> {
    const items = await this.redis.lrange(this.keys.unclassified, offset, offset + limit - 1);
    return items.map((item) => JSON.parse(item) as UnclassifiedFailure);
  }

  private firstTime(what: string): boolean {
    if (this.reported.has(what)) return false;
    if (this.reported.size >= REMEMBERED) this.reported.clear();
    this.reported.add(what);
    return true;
  }
}
