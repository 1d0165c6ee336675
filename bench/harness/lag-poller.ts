import type { Redis } from 'ioredis';
import type { Distribution } from '../shared/protocol.js';
import { distribution } from '../shared/stats.js';
import type { CommandCounts } from './bench-redis.js';
import { sleep } from './wait.js';

export interface LagReport {
  /** Was there a consumer group to measure (only variants with the stream source have one)? */
  measured: boolean;
  /** Age of the oldest entry the group has not yet acknowledged (unread or pending), ms, sampled. */
  lagMs: Distribution;
  /** Entries not yet acknowledged (unread + pending), the most seen. */
  maxEntriesBehind: number;
}

/**
 * Samples how far a consumer group is behind its streams, from outside the app: the age of
 * the oldest entry it has not acknowledged yet (XPENDING's oldest, else the first entry after
 * its last-delivered-id). It counts its own commands, so they can be taken out of the
 * command counts of the run.
 */
export class StreamLagPoller {
  readonly ownCommands: CommandCounts = {};
  private readonly samples: number[] = [];
  private maxEntriesBehind = 0;
  private measured = false;
  private running?: Promise<void>;
  private stopping = false;
  /** The last sample, summed over the streams; undefined while there is no group to measure. */
  latest?: { lagMs: number; entriesBehind: number };

  constructor(
    private readonly redis: Redis,
    private readonly streams: readonly string[],
    private readonly group: string,
    private readonly everyMs = 100,
  ) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<LagReport> {
    this.stopping = true;
    await this.running;
    return { measured: this.measured, lagMs: distribution(this.samples), maxEntriesBehind: this.maxEntriesBehind };
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let lag = 0;
      let behind = 0;
      for (const stream of this.streams) {
        const sample = await this.sample(stream);
        if (!sample) continue;
        this.measured = true;
        lag = Math.max(lag, sample.lagMs);
        behind += sample.entriesBehind;
      }
      if (this.measured) {
        this.latest = { lagMs: lag, entriesBehind: behind };
        this.samples.push(lag);
        this.maxEntriesBehind = Math.max(this.maxEntriesBehind, behind);
      }
      await sleep(this.everyMs);
    }
  }

  private async sample(stream: string): Promise<{ lagMs: number; entriesBehind: number } | undefined> {
    let groups: unknown[][];
    try {
      groups = (await this.count('xinfo|groups', this.redis.call('XINFO', 'GROUPS', stream))) as unknown[][];
    } catch {
      return undefined; // no stream yet
    }
    const group = groups.map(toRecord).find((g) => g.name === this.group);
    if (!group) return undefined;
    const pending = Number(group.pending ?? 0);
    const unread = Number(group.lag ?? 0);
    let oldest: string | undefined;
    if (pending > 0) {
      const summary = (await this.count('xpending', this.redis.call('XPENDING', stream, this.group))) as [number, string | null];
      oldest = summary[1] ?? undefined;
    } else {
      const next = (await this.count(
        'xrange',
        this.redis.call('XRANGE', stream, `(${String(group['last-delivered-id'])}`, '+', 'COUNT', 1),
      )) as [string, unknown][];
      oldest = next[0]?.[0];
    }
    const lagMs = oldest ? Math.max(0, Date.now() - Number(oldest.split('-')[0])) : 0;
    return { lagMs, entriesBehind: pending + unread };
  }

  private count<T>(command: string, reply: Promise<T>): Promise<T> {
    this.ownCommands[command] = (this.ownCommands[command] ?? 0) + 1;
    return reply;
  }
}

function toRecord(fields: unknown[]): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[String(fields[i])] = fields[i + 1];
  return record;
}
