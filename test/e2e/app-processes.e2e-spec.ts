import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { FlowFailureModuleOptions } from '../../lib/index.js';
import { AppProcess, compileProcessApp } from '../support/app-process.js';
import { REDIS_URL, claimsTakenOver, uniquePrefix, waitUntil } from '../support/harness.js';
import { claimStates, deadLetterRecords, heldClaims, moduleKeys } from '../support/internals.js';
import { type ProcessRun, runsKey } from '../support/process-app/runs.js';
import { specResources } from '../support/spec-resources.js';

/**
 * App instances in processes of their own (test/support/process-app), for what cannot
 * happen inside Jest's process: a SIGKILL during a handler, a process stalled longer than
 * a lease. They run without @nestjs/bullmq installed; plain Workers here fail the jobs.
 */
describe('app instances in processes of their own', () => {
  const prefix = uniquePrefix('processes');
  const keys = moduleKeys(prefix);
  const spec = specResources(prefix);
  let compiled: Awaited<ReturnType<typeof compileProcessApp>> | undefined;

  beforeAll(async () => {
    compiled = await compileProcessApp();
  });

  afterAll(() => compiled?.remove());

  async function startProcess(
    options: FlowFailureModuleOptions,
    handler: { ms?: number; throws?: boolean; parent?: object } = {},
    clockOffsetMs = 0,
  ): Promise<AppProcess> {
    const env = {
      ...(handler.parent ? { PARENT_HANDLER: JSON.stringify(handler.parent) } : {}),
      REDIS_URL,
      PREFIX: prefix,
      QUEUES: 'parents,children',
      OPTIONS: JSON.stringify(options),
      HANDLER_MS: String(handler.ms ?? 0),
      HANDLER_THROWS: String(handler.throws ?? false),
      CLOCK_OFFSET_MS: String(clockOffsetMs),
    };
    return spec.closeAfter(await AppProcess.start(compiled?.entry as string, env));
  }

  async function failChild(): Promise<string> {
    spec.worker('parents');
    spec.worker('children');
    const [childId] = await spec.redis.failChildren();
    return childId;
  }

  const parkedClaim = async () => {
    const [claim] = await heldClaims(spec.redis.redis, keys);
    return claim !== undefined && (await claimStates(spec.redis.redis, keys, [claim]))[0]?.startsWith('wait|') === true;
  };

  /** Every handler run the processes recorded, as it started and as it ended. */
  const runs = async (): Promise<ProcessRun[]> => (await spec.redis.redis.lrange(runsKey(prefix), 0, -1)).map((json) => JSON.parse(json) as ProcessRun);
  const starts = async () => (await runs()).filter((run) => run.phase === 'start');
  const ran = (app: AppProcess, phase: ProcessRun['phase']) => async () => (await runs()).some((run) => run.pid === app.pid && run.phase === phase);

  test('the module loads and handles failures where @nestjs/bullmq is not installed', async () => {
    const app = await startProcess({});
    expect(app.output).toMatch(/^@nestjs\/bullmq: absent \(ERR_MODULE_NOT_FOUND\)$/m);
    const childId = await failChild();
    await waitUntil('the handler ran', ran(app, 'end'));
    expect((await runs()).map((run) => [run.handler, run.jobId, run.phase])).toEqual([
      ['child', childId, 'start'],
      ['child', childId, 'end'],
    ]);
  });

  test('a process stalled longer than leaseMs mid-run: another instance runs the handler again, and the stalled one, resumed, loses the claim', async () => {
    const options = { leaseMs: 1000, sweepIntervalMs: 0 };
    const stalled = await startProcess(options, { ms: 1000 });
    await failChild();
    await waitUntil('the handler started', ran(stalled, 'start'));
    stalled.pause();
    const other = await startProcess(options, { ms: 1000 });
    await waitUntil('the other instance ran it', ran(other, 'end'), 15_000);
    const resumedAt = Date.now();
    stalled.resume();
    await waitUntil('the stalled run ended', ran(stalled, 'end'));
    await waitUntil('no claim held', async () => (await heldClaims(spec.redis.redis, keys)).length === 0);

    // At-least-once: two runs, the second while the first process was stalled.
    const [first, second] = await starts();
    expect([first.pid, second.pid]).toEqual([stalled.pid, other.pid]);
    expect(second.at).toBeLessThan(resumedAt);
    expect(other.logged('warn', /Took over 1 claim/)).toHaveLength(1);
    // It says so when its renewal finds the claim gone, or when its outcome is refused (its
    // output may arrive after the claim is settled elsewhere).
    await waitUntil('the stalled one told it lost the claim', () => stalled.logged('warn', /Lost the claim of RecordingHandlers\.child/).length > 0);
    expect(await claimStates(spec.redis.redis, keys, [`child-failed:RecordingHandlers.child|${first.occurrenceId}`])).toEqual(['done']);
    expect(await starts()).toHaveLength(2);
  });

  test('a handler that keeps throwing, its process killed during its first attempt: another goes on from the second, handlerAttempts in all', async () => {
    const options = { leaseMs: 1000, sweepIntervalMs: 0, handlerAttempts: 3, handlerBackoffMs: 100 };
    const killed = await startProcess(options, { ms: 1000, throws: true });
    await failChild();
    await waitUntil('the first attempt started', ran(killed, 'start'));
    await killed.kill();
    const other = await startProcess(options, { throws: true });
    await waitUntil('a dead letter', async () => (await deadLetterRecords(spec.redis.redis, keys)).length === 1, 15_000);

    const [letter] = await deadLetterRecords(spec.redis.redis, keys);
    expect(letter).toMatchObject({ handler: 'RecordingHandlers.child', attempts: 3 });
    expect((await starts()).map((run) => run.pid)).toEqual([killed.pid, other.pid, other.pid]);
  });

  // During its backoff the claim is parked with the attempts made so far (`wait|<owner>|1`):
  // the instance that takes it over runs the second attempt, not the third.
  test('a handler that keeps throwing, its process killed while it waits to retry: another goes on, handlerAttempts in all', async () => {
    const killed = await startProcess({ leaseMs: 1000, sweepIntervalMs: 0, handlerAttempts: 3, handlerBackoffMs: 5000 }, { throws: true });
    await failChild();
    await waitUntil('the first attempt ended', ran(killed, 'end'));
    // It threw, and its claim now waits, parked, for the second attempt.
    await waitUntil('the retry parked', parkedClaim);
    await killed.kill();
    const other = await startProcess({ leaseMs: 1000, sweepIntervalMs: 0, handlerAttempts: 3, handlerBackoffMs: 100 }, { throws: true });
    await waitUntil('a dead letter', async () => (await deadLetterRecords(spec.redis.redis, keys)).length === 1, 15_000);

    expect((await starts()).map((run) => run.pid)).toEqual([killed.pid, other.pid, other.pid]);
    expect((await deadLetterRecords(spec.redis.redis, keys))[0]).toMatchObject({ attempts: 3 });
  });

  test('replicas whose clocks are 20 minutes apart: leases, take-overs and the sweep go by Redis time, each failure once', async () => {
    const TEN_MINUTES = 10 * 60 * 1000;
    // Live sources, leases of 2 s that handlers of 300 ms never outlive: a replica judging
    // leases by a clock 10 minutes fast would take the other's claims as expired, and run them twice.
    const live = { leaseMs: 2000, sweepIntervalMs: 0 };
    const ahead = await startProcess(live, { ms: 300 }, TEN_MINUTES);
    const behind = await startProcess(live, { ms: 300 }, -TEN_MINUTES);
    spec.worker('parents');
    spec.worker('children');
    const first = await spec.redis.failChildren(20);
    await waitUntil('each failure handled', async () => new Set((await runs()).filter((r) => r.phase === 'end').map((r) => r.jobId)).size === 20, 20_000);
    await waitUntil('no claim held', async () => (await heldClaims(spec.redis.redis, keys)).length === 0);
    // A take-over by the replica whose clock is behind: the one ahead is killed mid-run.
    const second = await spec.redis.failChildren(10);
    await waitUntil('the replica ahead started a run', async () => (await runs()).some((r) => r.pid === ahead.pid && r.phase === 'start' && second.includes(r.jobId)));
    // So far both lived: neither may have taken a claim of the other's.
    expect(behind.logged('warn', /Took over/)).toEqual([]);
    expect(ahead.logged('warn', /Took over/)).toEqual([]);
    await ahead.kill();
    // Every claim the dead replica held is among these (none can have expired yet: leases of 2 s).
    const heldAtKill = (await heldClaims(spec.redis.redis, keys)).length;
    await waitUntil('every failure of the second batch handled', async () => new Set((await runs()).filter((r) => r.phase === 'end' && second.includes(r.jobId)).map((r) => r.jobId)).size === 10, 20_000);
    await behind.stop();

    // The sweep alone, in two replicas whose clocks are 20 minutes apart: the shared
    // checkpoint follows Redis's clock, so neither skips nor repeats a failure. (A group of
    // their own: the live group's stream position would hold their sweep back.)
    const sweepOnly = { sources: [], sweepIntervalMs: 1000, consumerGroup: 'sweepers' };
    const sweepAhead = await startProcess(sweepOnly, {}, TEN_MINUTES);
    const sweepBehind = await startProcess(sweepOnly, {}, -TEN_MINUTES);
    const swept = await spec.redis.failChildren(10);
    await waitUntil('the sweep handled each', async () => new Set((await runs()).filter((r) => r.phase === 'end' && swept.includes(r.jobId)).map((r) => r.jobId)).size === 10, 20_000);
    // Two more sweeps each, then count: a late duplicate would show now.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await Promise.all([sweepAhead.stop(), sweepBehind.stop()]);

    const ends = (await runs()).filter((r) => r.phase === 'end');
    const byJob = new Map<string, number>();
    for (const run of ends) byJob.set(run.jobId, (byJob.get(run.jobId) ?? 0) + 1);
    expect([...byJob.keys()].sort()).toEqual([...first, ...second, ...swept].sort());
    // A run cut short by the kill may start again elsewhere; none ends twice. After the kill
    // the survivor took over only what was held then, in one pass or more (the take-over and
    // the stream's recovery of the dead consumer's entries may each find some first).
    expect([...byJob.values()].filter((count) => count > 1)).toEqual([]);
    expect(claimsTakenOver(behind.logged('warn', /Took over/).join('\n'))).toBeLessThanOrEqual(heldAtKill);
    expect(ahead.logged('warn', /Took over/)).toEqual([]);
  });

  // A settled wait's owner looks at the parent on a timer of its own; the park's lease
  // ends a lease after that look is due, so a dead owner's wait is taken over.
  test('a settled handler, its process killed while its claim waits for a sibling: another instance runs it once', async () => {
    const options = { leaseMs: 1000, sweepIntervalMs: 0 };
    const parent = { queueName: 'parents', settled: true };
    const killed = await startProcess(options, { parent });
    spec.worker('parents');
    spec.worker('children');
    const flow = await spec.redis.flows.add({
      name: 'parent',
      queueName: 'parents',
      children: [
        { name: 'child', queueName: 'children', data: { fail: true }, opts: { failParentOnFailure: true } },
        { name: 'sibling', queueName: 'siblings', opts: { jobId: 'sibling-1' } },
      ],
    });
    await waitUntil('the settled claim parked', parkedClaim);
    await killed.kill();
    const other = await startProcess(options, { parent });
    spec.worker('siblings');
    await waitUntil('the other instance ran it', async () => (await starts()).some((run) => run.handler === 'parent' && run.pid === other.pid), 15_000);
    await waitUntil('no claim held', async () => (await heldClaims(spec.redis.redis, keys)).length === 0);

    expect((await starts()).filter((run) => run.handler === 'parent').map((run) => [run.jobId, run.pid])).toEqual([[flow.job.id, other.pid]]);
  });
});
