import type { ModuleMetadata, InjectionToken, OptionalFactoryDependency } from '@nestjs/common';
import type { ConnectionOptions } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { ClusterConnectionOptions } from '../redis/redis-target.js';

/**
 * Where the module's Redis is: ioredis RedisOptions (BullMQ's, `url` included), an ioredis
 * Redis, an ioredis Cluster, or cluster options (`startupNodes` beside ioredis's
 * ClusterOptions). Clients are duplicated, never used or closed themselves.
 */
export type FlowFailureConnection = ConnectionOptions | Redis | Cluster | ClusterConnectionOptions;

export type LiveSource = 'worker' | 'stream';

export interface FlowFailureModuleOptions {
  /**
   * Default: the connection of `BullModule.forRoot()` when the app has one, else 127.0.0.1:6379.
   * On a Redis Cluster, every queue and this module need one prefix with a hash tag (`{bull}`).
   */
  connection?: FlowFailureConnection;
  /** Default: `BullModule.forRoot()`'s prefix, else 'bull'. */
  prefix?: string;
  /** Queues to watch besides those named by the decorators and by `@Processor`s. */
  queues?: string[];
  /** Default 'flow-failure'. Apps sharing a group (and prefix) share the work: each failure is handled once among them. */
  consumerGroup?: string;
  /** Default 5: how many times a throwing handler is tried before it is kept as a dead letter. */
  handlerAttempts?: number;
  /** Default 1000: wait before the second attempt, doubled for each further one. */
  handlerBackoffMs?: number;
  /**
   * Default 60 s: an attempt still running after this long has failed ("timed out"): its
   * slot is freed, its `signal` aborted, and it is tried again or kept as a dead letter
   * like an attempt that threw.
   */
  handlerTimeoutMs?: number;
  /** Default 7 days: how long a handled occurrence is remembered (and so not handled again); at least twice `leaseMs`. */
  dedupTtlMs?: number;
  /** Default 30 s: how long a claim outlives a process that stopped renewing it (crash recovery). */
  leaseMs?: number;
  /**
   * Default ['worker', 'stream']: the live sources that run. Leaving one out is for
   * measurements and special set-ups: without 'stream' nothing survives a crash of the
   * Worker's process but the sweep; without 'worker' jobs removed by `removeOnFail` are missed.
   */
  sources?: LiveSource[];
  /**
   * Default true: as a Worker of this app starts a flow job whose failure a handler may
   * want, it reserves that failure (one short script per job started), so that a failure
   * reaches its handlers without a claim's round trip. `false` saves the script on busy flow
   * queues whose jobs rarely fail; their failures are then claimed as they fail.
   */
  workerReservations?: boolean;
  /** Default 30 s: how often the failed sets are swept for failures no other source delivered; 0 turns the sweep off. */
  sweepIntervalMs?: number;
  /** Default 50: handler runs at once in this app instance. */
  concurrency?: number;
  /** Default 30 days: how long a dead letter is kept (as a failed job of the dead-letter queue) before it is removed. */
  deadLetterTtlMs?: number;
  /** Default 10 minutes: how long a `settled` handler waits for the failed parent's pending children. */
  settledTimeoutMs?: number;
  /** Default 10 s: the whole of `app.close()`: handlers in flight get what the steps before left, then their claims are handed back. */
  shutdownTimeoutMs?: number;
}

export interface FlowFailureModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  useFactory: (...args: never[]) => FlowFailureModuleOptions | Promise<FlowFailureModuleOptions>;
}
