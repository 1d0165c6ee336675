import { Logger } from '@nestjs/common';
import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { RedisUnreachableError } from '../errors/redis-unreachable.error.js';
import { MESSAGES } from '../flow-failure.messages.js';
import { within } from '../util/within.js';

/**
 * The three connections the module opens and closes:
 * - commands: claims, outcomes, acknowledgements;
 * - jobs: job loads and the reads that classify a failure. BullMQ defines its ~70 scripts
 *   on the connection of every Queue (the loader's Queues included), and ioredis copies all
 *   of them into each pipeline it builds: kept apart, the commands' pipelines stay cheap;
 * - blocking: the blocking stream reads.
 * Both non-blocking connections auto-pipeline: a catch-up's many small commands travel together.
 * Commands wait through an outage (maxRetriesPerRequest: null) rather than fail.
 */
export class RedisConnections {
  private readonly logger = new Logger('FlowFailureModule');
  private recoveredAt = 0;
  private readonly recoveryListeners: (() => void)[] = [];

  private constructor(
    readonly commands: Redis,
    readonly jobs: Redis,
    readonly blocking: Redis,
    readonly address: string,
  ) {}

  private get all(): Redis[] {
    return [this.commands, this.jobs, this.blocking];
  }

  static async open(connection: ConnectionOptions | Redis): Promise<RedisConnections> {
    const commands = create(connection, { enableAutoPipelining: true, connectionName: 'flow-failure' });
    const jobs = create(connection, { enableAutoPipelining: true, connectionName: 'flow-failure-jobs' });
    const blocking = create(connection, { connectionName: 'flow-failure-reader' });
    const address = describeAddress(commands);
    const connections = new RedisConnections(commands, jobs, blocking, address);
    try {
      // One after the other: a failed first attempt leaves no second socket half-open.
      for (const client of connections.all) await client.connect();
    } catch (error) {
      // A client that failed its first attempt has ended itself (no retries yet); disconnecting
      // it again would leave ioredis waiting for a 'close' its dead socket already emitted.
      for (const client of connections.all) if (client.status !== 'end') client.disconnect();
      throw new RedisUnreachableError(address, error);
    }
    for (const client of connections.all) connections.reportTrouble(client);
    return connections;
  }

  /**
   * True for `windowMs` after the command connection came back from an outage. Leases
   * kept in Redis ran out while nobody could renew them; until every live holder has
   * renewed, an expired lease says nothing about its holder being gone.
   */
  recentlyRecovered(windowMs: number): boolean {
    return Date.now() - this.recoveredAt < windowMs;
  }

  onRecovered(listener: () => void): void {
    this.recoveryListeners.push(listener);
  }

  /** Quits each connection, waiting at most `timeoutMs` for Redis to answer. */
  async close(timeoutMs: number): Promise<void> {
    await Promise.all(this.all.map((client) => quit(client, timeoutMs)));
  }

  /** One warning when a connection drops, one line when it is back: no log flood during an outage. */
  private reportTrouble(client: Redis): void {
    let down = false;
    let lastError = 'connection closed';
    client.on('error', (error: Error) => (lastError = error.message));
    client.on('reconnecting', () => {
      if (down) return;
      down = true;
      this.logger.warn(MESSAGES.redisDown(this.address, String(client.options.connectionName), lastError));
    });
    client.on('ready', () => {
      if (!down) return;
      down = false;
      lastError = 'connection closed';
      this.logger.log(MESSAGES.redisBack(this.address, String(client.options.connectionName)));
      if (client === this.commands) {
        this.recoveredAt = Date.now();
        for (const listener of this.recoveryListeners) listener();
      }
    });
  }
}

function create(connection: ConnectionOptions | Redis, extra: RedisOptions): Redis {
  const base = (connection instanceof Redis ? connection.options : connection) as RedisOptions & { url?: string };
  const retry = base.retryStrategy ?? ((times: number) => Math.min(times * 50, 2000));
  let connected = false;
  const overrides: RedisOptions = {
    ...extra,
    lazyConnect: true,
    maxRetriesPerRequest: null,
    // 'legacy' keeps RESP3 map replies (ioredis 6) in RESP2's flat shape, which the sources parse.
    replyMapping: 'legacy',
    // No retries before the first success: start-up fails fast and leaves no reconnect timer behind.
    retryStrategy: (times) => (connected ? retry(times) : null),
    // ioredis waits this long for a socket to close on disconnect, even one that is long dead
    // (Redis gone): keep it short so closing the app leaves no timer running for 2 s.
    disconnectTimeout: 200,
  };
  let client: Redis;
  if (connection instanceof Redis) {
    client = connection.duplicate(overrides);
  } else {
    const { url, ...options } = base;
    client = url ? new Redis(url, { ...options, ...overrides }) : new Redis({ ...options, ...overrides });
  }
  client.once('ready', () => (connected = true));
  return client;
}

function describeAddress(client: Redis): string {
  const { host, port, path } = client.options;
  return path ? String(path) : `${host ?? '127.0.0.1'}:${port ?? 6379}`;
}

/** QUIT when it can be answered, bounded so a vanished Redis cannot hold up shutdown. */
async function quit(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') await within(timeoutMs, client.quit());
  // Not for an ended client: disconnecting it again would wait for a second 'close' that never comes.
  if ((client.status as string) !== 'end') client.disconnect();
}
