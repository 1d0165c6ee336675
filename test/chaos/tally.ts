import type { Redis } from 'ioredis';
import { type PlacedFlow, expectedOccurrences, expectedRuns } from './chaos-flows.js';
import { parseClaimMember } from '../../lib/claims/formats.js';
import { RedisKeys } from '../../lib/redis/redis-keys.js';
import { StreamPositions } from '../../lib/sources/stream/stream-position.js';
import { runsKey } from './chaos-settings.js';

export interface Tally {
  occurrences: number;
  expected: number;
  lost: string[];
  /** Completed more than once with no SIGKILL to explain it, or under two occurrence ids. */
  duplicated: string[];
  /** Completed again because the process of an earlier completion was killed before it marked it done. */
  rerunsAfterKill: number;
  unexpected: string[];
  sources: Record<string, number>;
}

interface Run {
  occurrenceId: string;
  pid: number;
  source: string;
}

/** Compares what the handlers recorded with what the flows must have caused. */
export async function tally(redis: Redis, prefix: string, flows: PlacedFlow[], killedPids: ReadonlySet<number>): Promise<Tally> {
  const recorded = await redis.hgetall(runsKey(prefix));
  const runs = new Map<string, Run[]>();
  const sources: Record<string, number> = {};
  for (const [field, value] of Object.entries(recorded)) {
    const [handler, job, occurrenceId] = field.split('|');
    const [pid, source] = value.split('|');
    const key = `${handler}|${job}`;
    runs.set(key, [...(runs.get(key) ?? []), { occurrenceId, pid: Number(pid), source }]);
    sources[source] = (sources[source] ?? 0) + 1;
  }
  const expected = new Set(flows.flatMap(expectedRuns));
  const result: Tally = {
    occurrences: flows.reduce((sum, flow) => sum + expectedOccurrences(flow), 0),
    expected: expected.size,
    lost: [...expected].filter((key) => !runs.has(key)),
    duplicated: [],
    rerunsAfterKill: 0,
    unexpected: [...runs.keys()].filter((key) => !expected.has(key)),
    sources,
  };
  for (const [key, list] of runs) {
    if (list.length === 1) continue;
    const occurrenceIds = new Set(list.map((run) => run.occurrenceId));
    // Every completion but the last must have come from a process that was then killed.
    const killedRuns = list.filter((run) => killedPids.has(run.pid)).length;
    if (occurrenceIds.size > 1 || killedRuns < list.length - 1) result.duplicated.push(key);
    else result.rerunsAfterKill += list.length - 1;
  }
  return result;
}

/** True when no claim is held or pending and every group has read and acknowledged its stream. */
export async function moduleQuiet(redis: Redis, prefix: string, queues: string[]): Promise<boolean> {
  const keys = new RedisKeys(prefix, 'flow-failure');
  if ((await redis.zcard(keys.leases)) > 0) return false;
  const positions = new StreamPositions(redis, keys);
  for (const queue of queues) {
    if (!(await positions.read(queue))?.caughtUp) return false;
  }
  return true;
}

/**
 * The pid of a process that holds a claim right now (a handler mid-run), so a kill lands
 * where it hurts; undefined when none does within `withinMs`.
 */
export async function pidHoldingAClaim(redis: Redis, prefix: string, withinMs: number): Promise<number | undefined> {
  const keys = new RedisKeys(prefix, 'flow-failure');
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const [member] = await redis.zrange(keys.leases, '0', '0');
    const claim = member ? parseClaimMember(member) : undefined;
    const state = claim ? await redis.hget(keys.occurrence(claim.occurrenceId), `h:${claim.handlerKey}`) : null;
    // state = run|<hostname>:<pid>:<random>|<attempt>
    const pid = state?.startsWith('run|') ? Number(state.split('|')[1].split(':').at(-2)) : NaN;
    if (Number.isInteger(pid)) return pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}
