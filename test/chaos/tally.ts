import type { Redis } from 'ioredis';
import { scanKeys } from '../support/harness.js';
import { claimStates, heldClaims, moduleKeys, parseClaimMember } from '../support/internals.js';
import { type PlacedFlow, expectedOccurrences, expectedRuns } from './chaos-flows.js';
import { runsKey } from './chaos-settings.js';

/** One completed handler run, as the chaos app recorded it. */
export interface RecordedRun {
  /** 'parent' or 'child' (the chaos app's two handlers). */
  handler: string;
  /** `${queue}:${jobId}` of the failed job. */
  job: string;
  occurrenceId: string;
  pid: number;
  source: string;
  /** When the handler was called (ms, the app's clock: same machine as the test). */
  startedAt: number;
}

/** A SIGKILL: which process, when, and the runs it had started and not yet marked done (openRuns, read right after it died). */
export interface Kill {
  pid: number;
  at: number;
  open: ReadonlySet<string>;
}

export interface Tally {
  occurrences: number;
  expected: number;
  lost: string[];
  /** Completed more than once, and a kill inside the earlier run does not explain it (or under two occurrence ids). */
  duplicated: string[];
  /** Completed again because the process of the earlier completion was killed between its start and its done mark. */
  rerunsInsideKilledRuns: number;
  /** Runs the killed processes had started and not marked done when they died: an upper bound of the re-runs. */
  openAtKills: number;
  unexpected: string[];
  sources: Record<string, number>;
}

/** The key `openRuns` gives a run whose handler was claimed (`parent` or `child` and the occurrence). */
function claimedRun(handler: string, occurrenceId: string): string {
  return `${handler}|${occurrenceId}`;
}

/** The key `openRuns` gives every run of a job whose failure the process had reserved (its claims may not be written yet). */
function reservedRun(job: string): string {
  return `reserved|${job}`;
}

/**
 * Compares the completed runs with what the flows must have caused. A (handler, job) run
 * more than once is a re-run only when every completion but the last came from a process
 * that was SIGKILLed after that run started and before its done mark was written (the
 * kill's `open` set); any other repeat is a duplicate, whatever became of the process later.
 */
export function judge(flows: readonly PlacedFlow[], runs: readonly RecordedRun[], kills: readonly Kill[]): Tally {
  const byRun = new Map<string, RecordedRun[]>();
  const sources: Record<string, number> = {};
  for (const run of runs) {
    const key = `${run.handler}|${run.job}`;
    byRun.set(key, [...(byRun.get(key) ?? []), run]);
    sources[run.source] = (sources[run.source] ?? 0) + 1;
  }
  const expected = new Set(flows.flatMap(expectedRuns));
  const killOf = new Map(kills.map((kill) => [kill.pid, kill]));
  const result: Tally = {
    occurrences: flows.reduce((sum, flow) => sum + expectedOccurrences(flow), 0),
    expected: expected.size,
    lost: [...expected].filter((key) => !byRun.has(key)),
    duplicated: [],
    rerunsInsideKilledRuns: 0,
    openAtKills: kills.reduce((sum, kill) => sum + kill.open.size, 0),
    unexpected: [...byRun.keys()].filter((key) => !expected.has(key)),
    sources,
  };
  const killedInside = (run: RecordedRun) => {
    const kill = killOf.get(run.pid);
    return (
      kill !== undefined &&
      run.startedAt <= kill.at &&
      (kill.open.has(claimedRun(run.handler, run.occurrenceId)) || kill.open.has(reservedRun(run.job)))
    );
  };
  for (const [key, list] of byRun) {
    if (list.length === 1) continue;
    const earlier = [...list].sort((a, b) => a.startedAt - b.startedAt).slice(0, -1);
    const oneOccurrence = new Set(list.map((run) => run.occurrenceId)).size === 1;
    if (oneOccurrence && earlier.every(killedInside)) result.rerunsInsideKilledRuns += earlier.length;
    else result.duplicated.push(key);
  }
  return result;
}

/** Reads what the chaos apps recorded and judges it. */
export async function tally(redis: Redis, prefix: string, flows: readonly PlacedFlow[], kills: readonly Kill[]): Promise<Tally> {
  const recorded = await redis.hgetall(runsKey(prefix));
  const runs = Object.entries(recorded).map(([field, value]): RecordedRun => {
    const [handler, job, occurrenceId] = field.split('|');
    const [pid, source, startedAt] = value.split('|');
    return { handler, job, occurrenceId, pid: Number(pid), source, startedAt: Number(startedAt) };
  });
  return judge(flows, runs, kills);
}

/** The pid in an owner name (`<hostname>:<pid>:<random>`, see FlowFailureRuntime.owner). */
function pidOf(owner: string | null | undefined): number {
  return Number(owner?.split(':').at(-2));
}

/**
 * The runs a process had started and not marked done, read right after it was SIGKILLed
 * (nothing of it can change them any more, and another process may take them only after a
 * lease): its claims still in state `run|<owner>|…`, and the failures its Workers reserved,
 * whose handlers start before their claim is written.
 */
export async function openRuns(redis: Redis, prefix: string, pid: number): Promise<Set<string>> {
  const keys = moduleKeys(prefix);
  const open = new Set<string>();
  const members = await heldClaims(redis, keys);
  const states = await claimStates(redis, keys, members);
  members.forEach((member, i) => {
    const claim = parseClaimMember(member);
    if (!claim || !states[i]?.startsWith('run|') || pidOf(states[i]?.split('|')[1]) !== pid) return;
    open.add(claimedRun(claim.handlerKey.startsWith('parent-failed:') ? 'parent' : 'child', claim.occurrenceId));
  });
  const reservations = await scanKeys(redis, `${keys.reservationPrefix}*`);
  const owners = reservations.length > 0 ? await redis.mget(...reservations) : [];
  reservations.forEach((key, i) => {
    if (pidOf(owners[i]) !== pid) return;
    const attempt = key.slice(keys.reservationPrefix.length); // <queue>:<jobId>:<attemptsStarted>
    open.add(reservedRun(attempt.slice(0, attempt.lastIndexOf(':'))));
  });
  return open;
}

/**
 * The pid of a process that holds a claim right now (a handler mid-run), so a kill lands
 * where it hurts; undefined when none does within `withinMs`.
 */
export async function pidHoldingAClaim(redis: Redis, prefix: string, withinMs: number): Promise<number | undefined> {
  const keys = moduleKeys(prefix);
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const [member] = await redis.zrange(keys.leases, '0', '0');
    const [state] = member ? await claimStates(redis, keys, [member]) : [null];
    // state = run|<hostname>:<pid>:<random>|<attempt>
    const pid = state?.startsWith('run|') ? pidOf(state.split('|')[1]) : NaN;
    if (Number.isInteger(pid)) return pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}
