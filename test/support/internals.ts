import type { Redis } from 'ioredis';
import { ClaimStore } from '../../lib/claims/claim.store.js';
import { LuaScripts } from '../../lib/claims/lua-scripts.js';
import { ReadAndClaim } from '../../lib/claims/read-and-claim.js';
import { CHILDREN_PER_GROUP, FlowChildrenReader } from '../../lib/classifier/flow-children.js';
import { JobLoader } from '../../lib/classifier/job-loader.js';
import { RedisKeys } from '../../lib/redis/redis-keys.js';
import { ReadBehind } from '../../lib/sources/stream/read-behind.js';

/**
 * The module's parts that tests drive straight against Redis, built in this one place (as
 * the runtime builds them), so a change of their wiring is one change here.
 */
export { RedisKeys } from '../../lib/redis/redis-keys.js';
export { ClaimStore } from '../../lib/claims/claim.store.js';
export type { ClaimRequest, ClaimResult, GrantedClaim } from '../../lib/claims/claim.types.js';
export { claimMember, occurrenceId, parseClaimMember } from '../../lib/claims/formats.js';

export function claimStore(connection: Redis, keys: RedisKeys, owner: string, leaseMs: number, dedupTtlMs: number): ClaimStore {
  return new ClaimStore(connection, new LuaScripts(connection), keys, owner, leaseMs, dedupTtlMs, dedupTtlMs);
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
 * The stream source's script behind each read, for one consumer on its own blocking
 * connection; it asks whether failed jobs had children, and claims when `claims` is given.
 */
export function readBehind(blocking: Redis, keys: RedisKeys, consumer: string, queues: readonly string[], loader: JobLoader, claims?: ReadClaimRules): ReadBehind {
  const streams = queues.map((queueName) => ({
    stream: keys.eventsStream(queueName),
    queueName,
    askChildren: true,
    handlers: claims?.handlers(queueName) ?? [],
  }));
  const script = new ReadAndClaim(new LuaScripts(blocking), keys, consumer, streams, claims?.store.readClaimArgs(), CHILDREN_PER_GROUP);
  return new ReadBehind(script, keys, loader, new FlowChildrenReader(new LuaScripts(blocking), keys));
}
