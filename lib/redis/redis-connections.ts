import { Logger } from '@nestjs/common';
import type { ConnectionOptions } from 'bullmq';
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { RedisUnreachableError } from '../errors/redis-unreachable.error.js';
import { MESSAGES } from '../flow-failure.messages.js';
import { within } from '../util/within.js';
import { type RedisTarget, describeCluster, startupNodesOf } from './redis-target.js';

/** A connection of the module: to one Redis server, or to a Redis Cluster. */
type RedisClient = Redis | Cluster;

/** The longest pause between two reconnection attempts of the module's connections (unless the app's options give their own retryStrategy). */
export const MAX_RECONNECT_DELAY_MS = 2000;

/**
 * How often a connection made while Redis loads its data asks again whether it is done.
 * ioredis waits the server's own loading estimate (up to 10 s) by default: a holder whose
 * connection came in early would be back seconds after the others, its leases run out.
 */
const LOADING_CHECK_MS = 200;

/**
 * ioredis 6 can speak RESP3; 'legacy' keeps its map replies in RESP2's flat shape, which the
 * sources parse. ioredis 5 has no such option (and speaks RESP2 only): spread, not written
 * in the options literal, so the source compiles against both.
 */
const LEGACY_REPLIES: Record<string, unknown> = { replyMapping: 'legacy' };

/**
 * One of the module's connections as BullMQ's `connection`. A bullmq that brings its own copy
 * of ioredis (5.x beside an app's ioredis 6) types it as another class; BullMQ itself tells
 * clients by shape at run time, so the same object serves.
 */
export function bullConnection(client: RedisClient): ConnectionOptions {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- needed where bullmq has its own ioredis
  return client as unknown as ConnectionOptions;
}

/** What each connection adds to the given options. */
interface Role {
  connectionName: string;
  enableAutoPipelining?: boolean;
}

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
  /** performance.now() when a connection last came back from an outage. */
  private recoveredAt = -Infinity;
  private readonly recoveryListeners: (() => void)[] = [];

  private constructor(
    readonly commands: RedisClient,
    readonly jobs: RedisClient,
    readonly blocking: RedisClient,
    readonly address: string,
  ) {}

  private get all(): RedisClient[] {
    return [this.commands, this.jobs, this.blocking];
  }

  /** Whether the connections go to a Redis Cluster (`address` then lists its startup nodes). */
  get cluster(): boolean {
    return this.commands.isCluster;
  }

  static async open(target: RedisTarget): Promise<RedisConnections> {
    const commands = create(target, { enableAutoPipelining: true, connectionName: 'flow-failure' });
    const jobs = create(target, { enableAutoPipelining: true, connectionName: 'flow-failure-jobs' });
    const blocking = create(target, { connectionName: 'flow-failure-reader' });
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
    // A server that refuses INFO (a renamed or disabled command) is taken for what it was given as.
    const info = connections.cluster ? '' : await commands.info('cluster').catch(() => '');
    if (info.includes('cluster_enabled:1')) {
      await connections.close(1000);
      throw new RedisUnreachableError(address, new Error(MESSAGES.clusterNodeAsPlain(address)));
    }
    for (const client of connections.all) connections.reportTrouble(client);
    return connections;
  }

  /** Milliseconds since one of the connections last came back from an outage; 0 while one is down. */
  msSinceRecovered(): number {
    if (this.all.some((client) => client.status !== 'ready')) return 0;
    return performance.now() - this.recoveredAt;
  }

  /** Called each time the command connection is back from an outage. */
  onRecovered(listener: () => void): void {
    this.recoveryListeners.push(listener);
  }

  /** Quits each connection, waiting at most `timeoutMs` for Redis to answer. */
  async close(timeoutMs: number): Promise<void> {
    await Promise.all(this.all.map((client) => quit(client, timeoutMs)));
  }

  /** One warning when a connection drops, one line when it is back: no log flood during an outage. */
  private reportTrouble(client: RedisClient): void {
    const name = nameOf(client);
    let down = false;
    let lastError = 'connection closed';
    client.on('error', (error: Error) => (lastError = error.message));
    client.on('reconnecting', () => {
      if (down) return;
      down = true;
      this.logger.warn(MESSAGES.redisDown(this.address, name, lastError));
    });
    client.on('ready', () => {
      if (!down) return;
      down = false;
      lastError = 'connection closed';
      this.logger.log(MESSAGES.redisBack(this.address, name));
      this.recoveredAt = performance.now();
      if (client === this.commands) for (const listener of this.recoveryListeners) listener();
    });
  }
}

/** A new connection to the target, never the client it was given (which the app owns and closes). */
function create(target: RedisTarget, role: Role): RedisClient {
  if (target.kind === 'cluster-client' || target.kind === 'cluster-options') {
    const base = target.kind === 'cluster-client' ? target.client.options : target.options;
    const nodes: ClusterNode[] = target.kind === 'cluster-client' ? startupNodesOf(target.client) : target.nodes;
    return whenConnected((connected) => {
      const retry = base.clusterRetryStrategy ?? ((times: number) => Math.min(100 + times * 2, MAX_RECONNECT_DELAY_MS));
      const options: ClusterOptions = {
        ...base,
        lazyConnect: true,
        enableAutoPipelining: role.enableAutoPipelining ?? false,
        clusterRetryStrategy: (times, reason) => (connected() ? retry(times, reason) : null),
        redisOptions: { ...base.redisOptions, ...nodeOverrides(role) },
      };
      return target.kind === 'cluster-client' ? target.client.duplicate([], options) : new Cluster(nodes, options);
    });
  }
  const base: RedisOptions & { url?: string } = target.kind === 'client' ? target.client.options : target.options;
  return whenConnected((connected) => {
    const retry = base.retryStrategy ?? ((times: number) => Math.min(times * 50, MAX_RECONNECT_DELAY_MS));
    const overrides: RedisOptions = {
      ...nodeOverrides(role),
      enableAutoPipelining: role.enableAutoPipelining ?? false,
      lazyConnect: true,
      // No retries before the first success: start-up fails fast and leaves no reconnect timer behind.
      retryStrategy: (times) => (connected() ? retry(times) : null),
    };
    if (target.kind === 'client') return target.client.duplicate(overrides);
    const { url, ...options } = base;
    return url ? new Redis(url, { ...options, ...overrides }) : new Redis({ ...options, ...overrides });
  });
}

/** The options of each server connection (a cluster's node connections too). */
function nodeOverrides(role: Role): RedisOptions {
  return {
    ...LEGACY_REPLIES,
    connectionName: role.connectionName,
    maxRetriesPerRequest: null,
    maxLoadingRetryTime: LOADING_CHECK_MS,
    // ioredis waits this long for a socket to close on disconnect, even one that is long dead
    // (Redis gone): keep it short so closing the app leaves no timer running for 2 s.
    disconnectTimeout: 200,
  };
}

/** Builds a client whose retry strategy may ask whether it has been ready once. */
function whenConnected<T extends RedisClient>(build: (connected: () => boolean) => T): T {
  let connected = false;
  const client = build(() => connected);
  client.once('ready', () => (connected = true));
  // A cluster also emits the error that fails its first connect(): open() reports that one, reportTrouble() the later ones.
  client.on('error', () => undefined);
  return client;
}

function nameOf(client: RedisClient): string {
  return String((client.isCluster ? (client as Cluster).options.redisOptions?.connectionName : (client as Redis).options.connectionName) ?? 'redis');
}

function describeAddress(client: RedisClient): string {
  if (client.isCluster) return describeCluster(startupNodesOf(client as Cluster));
  const { host, port, path } = (client as Redis).options;
  return path ? String(path) : `${host ?? '127.0.0.1'}:${port ?? 6379}`;
}

/** QUIT when it can be answered, bounded so a vanished Redis cannot hold up shutdown. */
async function quit(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') await within(timeoutMs, client.quit());
  // Not for an ended client: disconnecting it again would wait for a second 'close' that never comes.
  if ((client.status as string) !== 'end') client.disconnect();
}
