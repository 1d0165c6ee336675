import { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { MESSAGES } from '../../flow-failure.messages.js';
import type { RedisKeys } from '../../redis/redis-keys.js';
import { compareIds, idTime } from './stream-entry.js';

/** Where the consumer group stands in a queue's events stream. */
export interface StreamPosition {
  /** The group has been handed every entry, and none waits for an acknowledgement. */
  caughtUp: boolean;
  /** Time of the last entry handed to the group (ms). */
  deliveredMs: number;
  /** When entries the group had not read were trimmed: the time of the oldest entry left (the end of the gap). */
  gapEndMs?: number;
}

/**
 * Reads the group's position in each events stream (for the sweep's horizon and for
 * `whenIdle`) and its lag (for monitoring), and warns, once per gap, when entries were
 * trimmed before the group read them.
 */
export class StreamPositions {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly openGaps = new Set<string>();

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keys: RedisKeys,
    /** Told of each gap once, as it is found, with the time of the oldest entry left (the gap's end). */
    private readonly onGap: (queue: string, endMs: number) => void = () => undefined,
  ) {}

  /**
   * Entries of the stream not yet handed to the group, as the monitoring reads it: one XINFO,
   * and no look for gaps (a metric reader or a health check must not change when a gap is
   * found and swept). undefined when Redis cannot tell, or the stream or group does not exist.
   */
  async lag(queue: string): Promise<number | undefined> {
    try {
      const lag = this.groupIn(await this.redis.call('XINFO', 'GROUPS', this.keys.eventsStream(queue)))?.lag;
      return lag === null || lag === undefined ? undefined : Number(lag);
    } catch {
      return undefined; // no stream yet
    }
  }

  /**
   * undefined when the stream or the group does not exist. Both looks are sent at once, on
   * `via` when given: Redis runs them before anything sent on that connection after them.
   */
  async read(queue: string, via: Redis | Cluster = this.redis): Promise<StreamPosition | undefined> {
    const stream = this.keys.eventsStream(queue);
    let info: Record<string, unknown>;
    let group: Record<string, unknown> | undefined;
    try {
      const [streamInfo, groups] = await Promise.all([via.call('XINFO', 'STREAM', stream), via.call('XINFO', 'GROUPS', stream)]);
      info = toRecord(streamInfo as unknown[]);
      group = this.groupIn(groups);
    } catch {
      return undefined; // no stream yet
    }
    if (!group) return undefined;
    const delivered = String(group['last-delivered-id']);
    const gapEnd = this.gapEnd(queue, delivered, info, group);
    return {
      caughtUp: Number(group.pending) === 0 && compareIds(delivered, String(info['last-generated-id'])) >= 0,
      deliveredMs: idTime(delivered),
      gapEndMs: gapEnd,
    };
  }

  /** This module's consumer group in an XINFO GROUPS reply. */
  private groupIn(groups: unknown): Record<string, unknown> | undefined {
    return (groups as unknown[][]).map(toRecord).find((g) => g.name === this.keys.group);
  }

  /**
   * The stream's oldest entry (or, emptied, its last id) is past the group's position, and
   * more entries were added after that position than the stream still holds: some were
   * trimmed unread. (Redis 7.0 does not move max-deleted-entry-id when it trims, so the
   * counters decide.) The warning says how many, and between which times they were written.
   */
  private gapEnd(queue: string, delivered: string, stream: Record<string, unknown>, group: Record<string, unknown>): number | undefined {
    const first = Array.isArray(stream['first-entry']) ? String(stream['first-entry'][0]) : undefined;
    const read = group['entries-read'];
    const added = Number(stream['entries-added']);
    const length = Number(stream.length);
    // Without entries-read (Redis 7.0 leaves it nil for a group created with `$` on an empty
    // stream), an entry is known lost only when more were ever added than the stream holds.
    const known = read !== null && read !== undefined;
    const lostAfterPosition = known ? added - Number(read) > length : added > length;
    const oldest = first ?? String(stream['last-generated-id']);
    const trimmedUnread = lostAfterPosition && compareIds(oldest, delivered) > 0;
    if (!trimmedUnread) {
      this.openGaps.delete(queue);
      return undefined;
    }
    // One warning per gap, not one per look while the reader works through it.
    if (this.openGaps.has(queue)) return idTime(oldest);
    this.openGaps.add(queue);
    this.logger.warn(
      MESSAGES.streamGap(queue, {
        // A group that has read nothing yet ('0-0') has no time to start from.
        from: delivered === '0-0' ? undefined : idTime(delivered),
        to: idTime(oldest),
        entries: known ? added - Number(read) - length : undefined,
      }),
    );
    this.onGap(queue, idTime(oldest));
    return idTime(oldest);
  }
}

/** XINFO replies are flat [name, value, name, value, ...] lists. */
export function toRecord(fields: unknown[]): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[String(fields[i])] = fields[i + 1];
  return record;
}
