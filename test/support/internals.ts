/**
 * The one place tests reach past the public API (`lib/index.js`) into the module's files.
 * When a file under lib/ moves, only this file changes. Each export is here because a test
 * needs it: the claim scripts and the stream's read script tested straight against Redis,
 * the unit tests of pure functions, and the few observations below that no public API gives.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { INestApplicationContext } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { ClaimStore } from '../../lib/claims/claim.store.js';
import { parseClaimMember } from '../../lib/claims/formats.js';
import { LuaScripts } from '../../lib/claims/lua-scripts.js';
import { ReadAndClaim } from '../../lib/claims/read-and-claim.js';
import { CHILDREN_PER_GROUP, FlowChildrenReader } from '../../lib/classifier/flow-children.js';
import { JobLoader } from '../../lib/classifier/job-loader.js';
import { DIAGNOSTICS_CHANNELS, type ReservationMessage } from '../../lib/diagnostics.js';
import type { ReservationUse } from '../../lib/dispatcher/worker-reservations.js';
import type { DeadLetter } from '../../lib/index.js';
import { type JobAttempt, RedisKeys, deadLetterQueueName } from '../../lib/redis/redis-keys.js';
import { FlowFailureRuntime } from '../../lib/runtime/flow-failure.runtime.js';
import { FailureReads } from '../../lib/sources/stream/failure-reads.js';
import { StreamPositions } from '../../lib/sources/stream/stream-position.js';

export { parseClaimMember } from '../../lib/claims/formats.js';
export { claimMember, occurrenceId, parseOccurrenceId } from '../../lib/claims/formats.js';
export type { ClaimRequest, ClaimResult, GrantedClaim } from '../../lib/claims/claim.types.js';
export { ClaimStore } from '../../lib/claims/claim.store.js';
export type { FailureSignal } from '../../lib/classifier/failure-signal.js';
export type { JobLoader } from '../../lib/classifier/job-loader.js';
export { parentPolicyOf } from '../../lib/classifier/parent-policy.js';
export { RecentFailures } from '../../lib/classifier/recent-failures.js';
export { HandlerMetadataAccessor } from '../../lib/discovery/handler-metadata.accessor.js';
export { filterMatches } from '../../lib/discovery/handler-filter.js';
export { resolveConfig } from '../../lib/flow-failure.config.js';
export { RedisKeys, jobKey, type JobAttempt } from '../../lib/redis/redis-keys.js';
export { parseStreamEntry, streamReplyPairs } from '../../lib/sources/stream/stream-entry.js';
export { toRecord } from '../../lib/sources/stream/stream-position.js';
export type { ReservationUse };

/** The default consumer group's keys under a prefix (what an app with no `consumerGroup` option writes). */
export function moduleKeys(prefix: string, group = 'flow-failure'): RedisKeys {
  return new RedisKeys(prefix, group);
}

/** The run id the claim rule reads on this connection's server (LeaseTrust). */
export async function serverRunId(connection: Redis, keys: RedisKeys): Promise<string> {
  return String(await new LuaScripts(connection).run('runId', [keys.leases], []));
}

/**
 * A claim store as an instance's long past its catch-up window: it takes expired leases on
 * this server (LeaseTrust), unless `takeExpiredOn` says otherwise.
 */
export async function claimStore(connection: Redis, keys: RedisKeys, owner: string, leaseMs: number, dedupTtlMs: number, takeExpiredOn?: string): Promise<ClaimStore> {
  const runId = takeExpiredOn ?? (await serverRunId(connection, keys));
  return new ClaimStore(connection, new LuaScripts(connection), keys, owner, leaseMs, dedupTtlMs, dedupTtlMs, () => runId);
}

export function jobLoader(connection: Redis, keys: RedisKeys): JobLoader {
  return new JobLoader(connection, keys);
}

/** How a read claims: the claim store whose owner it claims for, and the handlers of each queue. */
export interface ReadClaimRules {
  store: ClaimStore;
  handlers: (queueName: string) => readonly string[];
}

/**
 * The stream source's reads through read-and-claim.lua, for one consumer on its own
 * blocking connection; they read failed jobs' children, and claim when `claims` is given.
 */
export function failureReads(blocking: Redis, keys: RedisKeys, consumer: string, queues: readonly string[], loader: JobLoader, claims?: ReadClaimRules): FailureReads {
  const streams = queues.map((queueName) => ({
    stream: keys.eventsStream(queueName),
    queueName,
    askChildren: true,
    handlers: claims?.handlers(queueName) ?? [],
  }));
  const script = new ReadAndClaim(new LuaScripts(blocking), keys, consumer, streams, claims ? () => claims.store.readClaimArgs() : undefined, CHILDREN_PER_GROUP);
  return new FailureReads(script, keys, loader, new FlowChildrenReader(new LuaScripts(blocking), keys));
}

/** The name this app instance's claims and reservations carry in Redis. */
export function ownerOf(app: INestApplicationContext): string {
  return app.get(FlowFailureRuntime).owner;
}

/** Claims not settled yet (running, backing off, parked, or left by a process that stopped): what could still be taken over. */
export async function heldClaims(redis: Redis | Cluster, keys: RedisKeys): Promise<string[]> {
  return redis.zrange(keys.leases, '0', '-1');
}

/** The dead letters of a consumer group as stored (what FlowFailureService.getDeadLetters() lists), for processes the test has no app of. */
export async function deadLetterRecords(redis: Redis | Cluster, keys: RedisKeys): Promise<DeadLetter[]> {
  const connection = redis.isCluster ? (redis as Cluster).duplicate() : (redis as Redis).duplicate();
  const queue = new Queue(deadLetterQueueName(keys.group), { connection, prefix: keys.prefix });
  try {
    const jobs = await queue.getFailed(0, -1);
    return jobs.map((job) => ({ ...job.data, lastError: job.failedReason, failedAt: job.finishedOn ?? job.timestamp }) as DeadLetter);
  } finally {
    await queue.close();
    await connection.quit();
  }
}

/** The time (ms) up to which the sweep has read a queue's failed set; undefined before its first sweep. */
export async function sweptUpTo(redis: Redis, keys: RedisKeys, queueName: string): Promise<number | undefined> {
  const checkpoint = await redis.get(keys.sweepCheckpoint(queueName));
  return checkpoint === null ? undefined : Number(checkpoint);
}

/** True when no claim is held and the group has read and acknowledged every entry of each queue's events stream. */
export async function moduleQuiet(redis: Redis, keys: RedisKeys, queues: readonly string[]): Promise<boolean> {
  if ((await redis.zcard(keys.leases)) > 0) return false;
  const positions = new StreamPositions(redis, keys);
  for (const queue of queues) {
    if (!(await positions.read(queue))?.caughtUp) return false;
  }
  return true;
}

/** A claim's state in its occurrence hash (`run|<owner>|<attempt>`, `wait|<n>`, `done`, `dead|<n>`, `discarded`), by claim member. */
export async function claimStates(redis: Redis, keys: RedisKeys, members: readonly string[]): Promise<(string | null)[]> {
  const claims = members.map(parseClaimMember);
  return Promise.all(claims.map((claim) => (claim ? redis.hget(keys.occurrence(claim.occurrenceId), `h:${claim.handlerKey}`) : Promise.resolve(null))));
}

/** What an app instance's Workers reserved as they started flow jobs, and how each reported failure used its reservation. */
export interface ReservationLog {
  reserved: JobAttempt[];
  /** `queue:jobId` -> what the failure did: 'run-now' (handlers before the claim), 'claim-first' (too late for that), 'none'. */
  used: Map<string, ReservationUse>;
  stop(): void;
}

/**
 * Watches an app's Worker reservations through the module's `reservation` diagnostics
 * channel: which attempts its Workers reserved, and which path each failure they reported took.
 */
export function watchReservations(app: INestApplicationContext): ReservationLog {
  const owner = ownerOf(app);
  const log: ReservationLog = { reserved: [], used: new Map(), stop: () => diagnosticsChannel.unsubscribe(DIAGNOSTICS_CHANNELS.reservation, listener) };
  const listener = (message: unknown) => {
    const { owner: from, attempt, use } = message as ReservationMessage;
    if (from !== owner) return;
    if (use === undefined) log.reserved.push(attempt);
    else log.used.set(`${attempt.queueName}:${attempt.jobId}`, use);
  };
  diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.reservation, listener);
  return log;
}
