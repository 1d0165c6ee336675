/**
 * The one place tests reach past the public API (`lib/index.js`) into the module's files.
 * When a file under lib/ moves, only this file changes. Each export is here because a test
 * needs it: the claim scripts and the stream's read script tested straight against Redis,
 * the unit tests of pure functions, and the few observations below that no public API gives.
 */
import type { INestApplicationContext } from '@nestjs/common';
import type { DeadLetter } from '../../lib/index.js';
import type { Redis } from 'ioredis';
import type { ReservationUse } from '../../lib/dispatcher/worker-reservations.js';
import { ModuleKeys, parseClaimMember } from '../../lib/redis/module-keys.js';
import type { JobAttempt } from '../../lib/redis/job-key.js';
import { FlowFailureRuntime } from '../../lib/runtime/flow-failure.runtime.js';
import { StreamPositions } from '../../lib/sources/stream-position.js';

export { occurrenceId, parseOccurrenceId } from '../../lib/classifier/failure-occurrence.js';
export { JobLoader } from '../../lib/classifier/job-loader.js';
export { parentPolicyOf } from '../../lib/classifier/parent-policy.js';
export { RecentFailures } from '../../lib/classifier/recent-failures.js';
export { ClaimStore, type ClaimRequest, type GrantedClaim } from '../../lib/dispatcher/claim.store.js';
export { HandlerMetadataAccessor } from '../../lib/discovery/handler-metadata.accessor.js';
export { filterMatches } from '../../lib/discovery/handler-filter.js';
export { resolveConfig } from '../../lib/flow-failure.config.js';
export { jobKey, parseDeferredFailure, parseJobKey, type JobAttempt } from '../../lib/redis/job-key.js';
export { FailedJobsPrefetch, type ReadClaimRules } from '../../lib/sources/failed-jobs.prefetch.js';
export type { FailureSignal } from '../../lib/sources/failure-signal.js';
export { parseStreamEntry, streamReplyPairs } from '../../lib/sources/stream-entry.js';
export { ModuleKeys, parseClaimMember, type ReservationUse };

/** The default consumer group's keys under a prefix (what an app with no `consumerGroup` option writes). */
export function moduleKeys(prefix: string, group = 'flow-failure'): ModuleKeys {
  return new ModuleKeys(prefix, group);
}

/** The name this app instance's claims and reservations carry in Redis. */
export function ownerOf(app: INestApplicationContext): string {
  return app.get(FlowFailureRuntime).owner;
}

/** Claims not settled yet (running, backing off, or left by a process that stopped): what could still be taken over. */
export async function heldClaims(redis: Redis, keys: ModuleKeys): Promise<string[]> {
  return redis.zrange(keys.leases, '0', '-1');
}

/** The dead letters of a consumer group as stored (what FlowFailureService.getDeadLetters() lists), for processes the test has no app of. */
export async function deadLetterRecords(redis: Redis, keys: ModuleKeys): Promise<DeadLetter[]> {
  return Object.values(await redis.hgetall(keys.deadLetters)).map((json) => JSON.parse(json) as DeadLetter);
}

/** The time (ms) up to which the sweep has read a queue's failed set; undefined before its first sweep. */
export async function sweptUpTo(redis: Redis, keys: ModuleKeys, queueName: string): Promise<number | undefined> {
  const checkpoint = await redis.get(keys.sweepCheckpoint(queueName));
  return checkpoint === null ? undefined : Number(checkpoint);
}

/** True when no claim is held and the group has read and acknowledged every entry of each queue's events stream. */
export async function moduleQuiet(redis: Redis, keys: ModuleKeys, queues: readonly string[]): Promise<boolean> {
  if ((await redis.zcard(keys.leases)) > 0) return false;
  const positions = new StreamPositions(redis, keys);
  for (const queue of queues) {
    if (!(await positions.read(queue))?.caughtUp) return false;
  }
  return true;
}

/** A claim's state in its occurrence hash (`run|<owner>|<attempt>`, `done`, `dead|<n>`, `discarded`), by claim member. */
export async function claimStates(redis: Redis, keys: ModuleKeys, members: readonly string[]): Promise<(string | null)[]> {
  const claims = members.map(parseClaimMember);
  return Promise.all(claims.map((claim) => (claim ? redis.hget(keys.occurrence(claim.occurrenceId), `h:${claim.handlerKey}`) : null)));
}

/** What an app instance's Workers reserved as they started flow jobs, and how each reported failure used its reservation. */
export interface ReservationLog {
  reserved: JobAttempt[];
  /** `queue:jobId` -> what the failure did: 'run-now' (handlers before the claim), 'claim-first' (too late for that), 'none'. */
  used: Map<string, ReservationUse>;
}

/**
 * Watches an app's Worker reservations: which attempts its Workers reserved, and which path
 * each failure they reported took. No public API tells a reserved failure from a claimed
 * one (both end as a done claim), so this wraps the instance's reservation book in place;
 * it changes nothing of what it does.
 */
export function watchReservations(app: INestApplicationContext): ReservationLog {
  const reservations = app.get(FlowFailureRuntime).parts.reservations;
  const log: ReservationLog = { reserved: [], used: new Map() };
  const reserve = reservations.reserve.bind(reservations);
  const use = reservations.use.bind(reservations);
  reservations.reserve = (attempt) => {
    log.reserved.push(attempt);
    reserve(attempt);
  };
  reservations.use = async (attempt) => {
    const how = await use(attempt);
    log.used.set(`${attempt.queueName}:${attempt.jobId}`, how);
    return how;
  };
  return log;
}
