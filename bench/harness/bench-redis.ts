import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { OwnRedisServer } from '../../test/support/redis-server.mjs';
import { repoRoot } from './repo-root.js';

/** `INFO commandstats` as command -> calls (script-internal commands included, as Redis counts them). */
export type CommandCounts = Record<string, number>;

export interface RedisSnapshot {
  commands: CommandCounts;
  /** used_cpu_user + used_cpu_sys of the server, seconds. */
  cpuSeconds: number;
  /** used_memory, bytes. */
  usedMemory: number;
}

/**
 * The Redis every scenario and variant runs against. By default a redis-server the bench
 * starts itself on a free port (test/support/redis-server.mjs), so that `INFO commandstats`
 * counts only the bench's commands, not those of other people's tests on 6379.
 */
export class BenchRedis {
  private constructor(
    readonly url: string,
    readonly admin: Redis,
    readonly owned: boolean,
    private readonly server?: OwnRedisServer,
  ) {}

  static async open(externalUrl?: string): Promise<BenchRedis> {
    if (externalUrl) return new BenchRedis(externalUrl, new Redis(externalUrl, { maxRetriesPerRequest: null }), false);
    const helper = (await import(pathToFileURL(join(repoRoot(), 'test/support/redis-server.mjs')).href)) as typeof import('../../test/support/redis-server.mjs');
    if (!helper.hasRedisServerBinary()) throw new Error(`bench: ${helper.REDIS_HELP} (or set BENCH_REDIS_URL)`);
    const server = await helper.startRedisServer();
    return new BenchRedis(server.url, new Redis(server.url, { maxRetriesPerRequest: null }), true, server);
  }

  async version(): Promise<string> {
    return parseInfo(await this.admin.info('server')).redis_version ?? 'unknown';
  }

  async snapshot(): Promise<RedisSnapshot> {
    const [commandstats, cpu, memory] = await Promise.all([this.admin.info('commandstats'), this.admin.info('cpu'), this.admin.info('memory')]);
    const commands: CommandCounts = {};
    for (const line of commandstats.split('\r\n')) {
      const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
      if (match) commands[match[1]] = Number(match[2]);
    }
    const info = parseInfo(cpu);
    return {
      commands,
      cpuSeconds: Number(info.used_cpu_user ?? 0) + Number(info.used_cpu_sys ?? 0),
      usedMemory: Number(parseInfo(memory).used_memory ?? 0),
    };
  }

  /** Deletes the keys of one prefix, and nothing else (never FLUSHALL: the server may be shared). */
  async cleanup(prefix: string): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 2000);
      cursor = next;
      if (keys.length > 0) await this.admin.unlink(...keys);
    } while (cursor !== '0');
  }

  async close(): Promise<void> {
    await this.admin.quit();
    await this.server?.stop();
  }
}

/** A prefix no other scenario or run uses. */
export function uniquePrefix(scenario: string, variant: string): string {
  return `ffb-${scenario}-${variant}-${randomBytes(3).toString('hex')}`;
}

/** b - a per command, without the commands that did not change. */
export function commandDelta(before: CommandCounts, after: CommandCounts): CommandCounts {
  const delta: CommandCounts = {};
  for (const [command, calls] of Object.entries(after)) {
    const change = calls - (before[command] ?? 0);
    if (change !== 0) delta[command] = change;
  }
  return delta;
}

export function totalCommands(counts: CommandCounts): number {
  return Object.values(counts).reduce((sum, calls) => sum + calls, 0);
}

function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}
