import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { occurrenceId } from '../claims/formats.js';
import type { LuaScripts } from '../claims/lua-scripts.js';
import type { FailureSignal } from '../classifier/failure-signal.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { RedisKeys } from '../redis/redis-keys.js';
import type { StreamPositions } from './stream/stream-position.js';

export interface SweepSourceOptions {
  queues: readonly string[];
  /** How often to sweep; 0: only the gaps and the trimmed ranges the stream reader reports. */
  intervalMs: number;
  owner: string;
}

const PAGE = 500;
/** Failures this recent are left to the worker and stream sources, which are about to deliver them. */
const GRACE_MS = 5000;
const LOCK_MS = 5 * 60 * 1000;
/**
 * Past a gap's end, how far its sweep goes too: `finishedOn` comes from the Worker's clock,
 * the stream ids from Redis's, so a trimmed failure may carry a slightly later time.
 */
const CLOCK_MARGIN_MS = 100;
/** A gap whose queue another replica was sweeping is tried again this soon, not at the next interval. */
const GAP_RETRY_MS = 1000;
/** While the stream reader is behind, how often at most a sweep follows it. */
const BEHIND_SWEEP_EVERY_MS = 1000;
/**
 * How close behind the reader a sweep that follows it goes. What the reader has passed is
 * recorded, being delivered, or trimmed unread: a delivery still under way loses nothing
 * to a sweep of the same failure (the claims decide), it only costs a second look.
 */
const FOLLOW_MARGIN_MS = 500;

/**
 * The safety net: each queue's `failed` ZSET (score = finishedOn) is the durable record
 * of terminal failures. Reading it from a checkpoint finds what the stream lost (trimmed
 * or deleted entries, a group created late). It only sweeps what the stream reader has
 * already passed, and skips occurrences already recorded, so in the normal case it loads
 * no job at all.
 */
export class SweepSource {
  private readonly logger = new Logger('FlowFailureModule');
  private timer?: NodeJS.Timeout;
  private started = false;
  private gapRetry?: NodeJS.Timeout;
  private sweeping?: Promise<void>;
  private again = false;
  private stopping = false;
  /** Gaps found in the streams and not yet swept: queue -> the time up to which failures were trimmed. */
  private readonly gaps = new Map<string, number>();
  /** The last sweep left a gap because another replica held its queue's lock. */
  private gapSweptElsewhere = false;
  private behindSweptAt = 0;
  /** Until then, sweeps go up to where the stream reader is (less FOLLOW_MARGIN_MS), not a grace behind it. */
  private followUntil = 0;
  /** The sweep a moment after the reader last reported being behind. */
  private afterBehind?: NodeJS.Timeout;
  /** The next sweep goes up to now (less CLOCK_MARGIN_MS): the reader has just caught up. */
  private upToNow = false;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly scripts: LuaScripts,
    private readonly keys: RedisKeys,
    private readonly positions: StreamPositions,
    private readonly deliver: (signals: FailureSignal[]) => Promise<void>,
    /** For each occurrence, whether it is recorded already (the claim store answers). */
    private readonly recorded: (occurrenceIds: string[]) => Promise<boolean[]>,
    /** The handlers' room: each slice of a page waits for it. */
    private readonly capacity: { room(): number; whenRoom(): Promise<void> },
    private readonly options: SweepSourceOptions,
  ) {}

  /**
   * Sets the checkpoints of queues seen for the first time (history before that is not
   * swept), then sweeps in the background: now and every interval, or, with the interval
   * 0, only what the stream reader reports it lost.
   */
  async start(): Promise<void> {
    const now = await this.redisNow();
    await Promise.all(this.options.queues.map((queue) => this.redis.set(this.keys.sweepCheckpoint(queue), now, 'NX')));
    this.started = true;
    if (this.options.intervalMs <= 0) {
      if (this.gaps.size > 0) this.trigger();
      return;
    }
    this.trigger();
    this.timer = setInterval(() => this.trigger(), this.options.intervalMs);
  }

  /**
   * No sweep under way or about to follow the reader: what the reader passed or lost is
   * delivered. A gap left to another replica's sweep does not count: that replica delivers it.
   */
  get idle(): boolean {
    return !this.sweeping && !this.afterBehind;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    clearTimeout(this.gapRetry);
    clearTimeout(this.afterBehind);
    await this.sweeping;
  }

  /**
   * A stream lost entries up to `endMs` before the group read them: only the sweep can
   * deliver their failures, so it sweeps now, up to there, however recent (the grace is for
   * failures the live sources will still deliver, and these they never will). Found before
   * start, the gap is swept by the first sweep.
   */
  sweepGap(queue: string, endMs: number): void {
    this.gaps.set(queue, Math.max(endMs, this.gaps.get(queue) ?? -Infinity));
    if (this.started && !this.stopping) this.trigger();
  }

  /**
   * The stream reader is behind the head: BullMQ may trim entries before it reads them, and
   * XREADGROUP moves past such a range silently once the trim and the read cross (a gap is
   * seen only when a look falls between them). So what the reader has passed is swept now,
   * at most every second, up to just behind the reader rather than a grace behind it, and
   * once more a moment after its last report: the failures among the trimmed entries wait
   * a second or two, not a sweep interval.
   */
  readerBehind(): void {
    if (!this.started || this.stopping) return;
    const now = performance.now();
    this.followUntil = now + FOLLOW_MARGIN_MS + 2 * BEHIND_SWEEP_EVERY_MS;
    if (now - this.behindSweptAt >= BEHIND_SWEEP_EVERY_MS) {
      this.behindSweptAt = now;
      this.trigger();
    }
    clearTimeout(this.afterBehind);
    this.afterBehind = setTimeout(() => {
      this.afterBehind = undefined;
      this.trigger();
    }, FOLLOW_MARGIN_MS + BEHIND_SWEEP_EVERY_MS);
  }

  /**
   * The reader that was behind has reached the head: whatever BullMQ trimmed behind it is
   * older than the head, so a sweep now, up to now, delivers the last of it. Without it the
   * failures trimmed in the reader's last second would wait for the sweep after its last
   * report (FOLLOW_MARGIN_MS + BEHIND_SWEEP_EVERY_MS), which still comes, for a failure whose
   * Worker's clock runs ahead of Redis's. What the reader has just read and is delivering is
   * looked at twice at most: the claims decide.
   */
  readerCaughtUp(): void {
    if (!this.started || this.stopping) return;
    this.upToNow = true;
    this.trigger();
  }

  /** Sweeps now, or once the sweep under way ends (what it has passed may have grown meanwhile). */
  private trigger(): void {
    if (this.sweeping) {
      this.again = true;
      return;
    }
    this.sweeping = this.sweepAll().finally(() => {
      this.sweeping = undefined;
      if (this.stopping) return;
      if (this.again) {
        this.again = false;
        this.trigger();
      } else if (this.gapSweptElsewhere && !this.gapRetry) {
        this.gapRetry = setTimeout(() => {
          this.gapRetry = undefined;
          this.trigger();
        }, GAP_RETRY_MS);
      }
    });
  }

  private async sweepAll(): Promise<void> {
    this.gapSweptElsewhere = false;
    const margin = this.upToNow ? CLOCK_MARGIN_MS : performance.now() < this.followUntil ? FOLLOW_MARGIN_MS : GRACE_MS;
    this.upToNow = false;
    for (const queue of this.options.queues) {
      if (this.stopping) return;
      try {
        if (!(await this.sweepQueue(queue, margin)) && this.gaps.has(queue)) this.gapSweptElsewhere = true;
      } catch (error) {
        this.logger.warn(MESSAGES.sweepFailed(queue, error));
      }
    }
  }

  /** False when another replica is sweeping the queue. `margin`: how far behind the reader (or now) it stops. */
  private async sweepQueue(queue: string, margin: number): Promise<boolean> {
    const lock = this.keys.sweepLock(queue);
    if ((await this.redis.set(lock, this.options.owner, 'PX', LOCK_MS, 'NX')) !== 'OK') return false;
    try {
      const gap = this.gaps.get(queue);
      const checkpointKey = this.keys.sweepCheckpoint(queue);
      // One round trip: the reader's position, Redis's clock and the checkpoint travel together.
      const [reached, stored] = await Promise.all([this.horizon(queue, margin), this.redis.get(checkpointKey)]);
      const horizon = Math.max(reached, gap === undefined ? -Infinity : gap + CLOCK_MARGIN_MS);
      const checkpoint = Number(stored ?? horizon);
      // Page on the score; `offset` skips the ids of the last score that were already read.
      let min = `(${checkpoint}`;
      let offset = 0;
      while (!this.stopping && checkpoint < horizon) {
        const page = await this.redis.zrangebyscore(this.keys.failedSet(queue), min, horizon, 'WITHSCORES', 'LIMIT', offset, PAGE);
        const jobs: { jobId: string; finishedOn: number }[] = [];
        for (let i = 0; i < page.length; i += 2) jobs.push({ jobId: page[i], finishedOn: Number(page[i + 1]) });
        await this.deliverUnrecorded(queue, jobs);
        if (jobs.length < PAGE) break;
        const last = jobs[jobs.length - 1].finishedOn;
        const atLast = jobs.filter((job) => job.finishedOn === last).length;
        offset = min === String(last) ? offset + atLast : atLast;
        min = String(last);
        await this.redis.set(checkpointKey, last - 1);
      }
      if (!this.stopping && checkpoint < horizon) await this.redis.set(checkpointKey, horizon);
      // Swept past it (here, or by another replica before): unless a later gap came meanwhile.
      if (!this.stopping && this.gaps.get(queue) === gap) this.gaps.delete(queue);
      return true;
    } finally {
      await this.scripts.run('releaseLock', [lock], [this.options.owner]);
    }
  }

  private async deliverUnrecorded(queue: string, jobs: { jobId: string; finishedOn: number }[]): Promise<void> {
    if (jobs.length === 0) return;
    const recorded = await this.recorded(jobs.map((job) => occurrenceId(queue, job.jobId, job.finishedOn)));
    const signals = jobs
      .filter((_, i) => !recorded[i])
      .map((job): FailureSignal => ({ source: 'sweep', queueName: queue, jobId: job.jobId }));
    // No more at once than the handlers have room for: a page of a long gap must not flood them.
    for (let from = 0; from < signals.length && !this.stopping; ) {
      // Every waiter wakes when room frees: another source may take it before this one runs.
      while (this.capacity.room() <= 0 && !this.stopping) await this.capacity.whenRoom();
      if (this.stopping) return;
      const slice = signals.slice(from, from + this.capacity.room());
      from += slice.length;
      await this.deliver(slice);
    }
  }

  /**
   * Redis's clock: the checkpoint is shared by every replica, so no replica's own clock
   * may move it (failed sets are scored by `finishedOn`, which the Workers' clocks wrote).
   */
  private async redisNow(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /**
   * Up to where the sweep may go, gaps aside: failures older than `margin` (the grace
   * period, or less while it follows the reader) and, while the group still has entries to
   * read, not past the last entry it was handed, unless entries past it were trimmed: then
   * up to the oldest entry left.
   */
  private async horizon(queue: string, margin: number): Promise<number> {
    const [now, position] = await Promise.all([this.redisNow(), this.positions.read(queue)]);
    const latest = now - margin;
    if (!position || position.caughtUp) return latest;
    return Math.min(latest, Math.max(position.deliveredMs - margin, position.gapEndMs ?? -Infinity));
  }
}
