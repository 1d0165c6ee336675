import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import type { ChildFailedEvent, FlowFailureModuleOptions } from '../../lib/index.js';
import { type TestApp, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { moduleKeys, sweptUpTo } from '../support/internals.js';
import { specResources } from '../support/spec-resources.js';

/** How long the sweep leaves a failure to the live sources (SweepSource's grace). */
const GRACE_MS = 5000;

/**
 * The sweep of the failed sets: what the live sources did not deliver, it does, every
 * sweepIntervalMs. The apps here have no Worker of their own; plain Workers fail the jobs.
 */
describe('the sweep', () => {
  const prefix = uniquePrefix('sweep');
  const stream = moduleKeys(prefix).eventsStream('children');
  const spec = specResources(prefix);
  const handlers = [recordingHandlers({ child: true })];

  async function failChildren(count: number): Promise<string[]> {
    const ids = await spec.redis.failChildren(count);
    const queue = spec.redis.queue('children');
    await waitUntil(`${count} children failed`, async () => (await Promise.all(ids.map((id) => queue.getJobState(id)))).every((s) => s === 'failed'));
    return ids;
  }
  const childIds = (app: TestApp) => app.log.of('child').map((e) => e.jobId).sort();
  const gapWarnings = (app: TestApp) => app.logger.lines.filter((line) => line.level === 'warn' && /trimmed past/.test(line.message));
  // An interval far longer than the waits below: only a sweep a gap triggers delivers in time.
  const gapOptions = { queues: ['parents', 'children'], sweepIntervalMs: 10 * 60 * 1000 };
  // sweepIntervalMs 0 turns the periodic sweep off, not the sweep of what the stream reader lost.
  const gapSweepCases: [string, FlowFailureModuleOptions][] = [
    ['the next interval', gapOptions],
    ['ever, with sweepIntervalMs 0 and the stream alone', { ...gapOptions, sources: ['stream'], sweepIntervalMs: 0 }],
  ];

  /** Failures while no app runs (after a first start that created the group on an empty stream), then the stream trimmed to its last 3 entries. */
  async function failedWhileDown(count: number): Promise<string[]> {
    spec.worker('parents');
    spec.worker('children');
    await (await spec.start({ withoutBull: true, handlers, options: gapOptions })).close();
    const lost = await failChildren(count);
    await spec.redis.redis.xtrim(stream, 'MAXLEN', 3);
    return lost;
  }

  test('alone (no live source), it delivers a failure by a sweep after the grace, every sweepIntervalMs; sweepIntervalMs: 0 sweeps nothing', async () => {
    spec.worker('parents');
    spec.worker('children');
    // Two services on the same queues, each in its own consumer group: one sweeps every second, one never.
    const only = (consumerGroup: string, sweepIntervalMs: number) =>
      spec.start({ withoutBull: true, handlers, options: { queues: ['parents', 'children'], sources: [], consumerGroup, sweepIntervalMs } });
    const [sweeping, off] = await Promise.all([only('sweeping', 1000), only('off', 0)]);
    // It fails after both started: their first sweeps, at start, were too early for it.
    const [child] = await failChildren(1);

    // After the grace, within a few intervals of 1 s; with the default interval (30 s) it would be far later.
    await waitUntil('the sweep delivered it', () => sweeping.log.runs.length === 1, GRACE_MS + 5 * 1000);
    await settle(sweeping, off);
    expect((sweeping.log.of('child') as ChildFailedEvent[]).map((e) => [e.jobId, e.source])).toEqual([[child, 'sweep']]);
    // The same failure, the same rules, the same time: the other service never swept.
    expect(off.log.runs).toEqual([]);
    expect(await sweptUpTo(spec.redis.redis, moduleKeys(prefix, 'off'), 'children')).toBeUndefined();
  });

  test('entries trimmed from the stream while no app ran: one warning with the queue and the span, and the sweep delivers every failure once', async () => {
    spec.worker('parents');
    spec.worker('children');
    const options = { queues: ['parents', 'children'], sweepIntervalMs: 1000 };
    // The group reads up to a first failure, then the app stops.
    const first = await spec.start({ withoutBull: true, handlers, options });
    await failChildren(1);
    await waitUntil('the first failure read', () => first.log.runs.length === 1);
    await settle(first);
    await first.close();

    // While it is down: failures, and the stream trimmed to its last 3 entries (as its maxLen would).
    const lost = await failChildren(20);
    await spec.redis.redis.xtrim(stream, 'MAXLEN', 3);
    const firstLost = Math.min(...(await Promise.all(lost.map(async (id) => (await spec.redis.queue('children').getJob(id))?.finishedOn as number))));

    const app = await spec.start({ withoutBull: true, handlers, options });
    await waitUntil('every failure delivered', () => app.log.runs.length === 20, GRACE_MS + 10_000);
    // Sweeps and stream reads go on (each looks at the gap again): still one warning.
    await waitUntil('a later sweep', async () => ((await sweptUpTo(spec.redis.redis, moduleKeys(prefix), 'children')) ?? 0) > firstLost + 1000, 10_000);
    await settle(app);
    expect(childIds(app)).toEqual([...lost].sort());
    expect(app.log.of('child').some((e) => e.source === 'sweep')).toBe(true);
    const gaps = app.logger.lines.filter((line) => line.level === 'warn' && /trimmed past \d+ entries/.test(line.message));
    expect(gaps).toHaveLength(1);
    expect(gaps[0].message).toMatch(/^The events stream of children was trimmed past \d+ entries the group had not read, written from (\S+) to (\S+) \((\d+) s\)/);
    // The span runs from where the group stopped to the first entry left: it covers the lost failures.
    const [, from, to, seconds] = /from (\S+) to (\S+) \((\d+) s\)/.exec(gaps[0].message) as RegExpExecArray;
    expect(Date.parse(from)).toBeLessThanOrEqual(firstLost);
    expect(Date.parse(to)).toBeGreaterThanOrEqual(firstLost);
    expect(Number(seconds)).toBe(Math.round((Date.parse(to) - Date.parse(from)) / 1000));
  });

  test.each(gapSweepCases)('a gap found at start-up is swept at once, not at %s, and the warning says what it spans', async (_, sweepOptions) => {
    const lost = await failedWhileDown(20);
    const app = await spec.start({ withoutBull: true, handlers, options: sweepOptions });
    await waitUntil('every failure delivered', () => app.log.runs.length === 20, 15_000);
    await settle(app);
    expect(childIds(app)).toEqual([...lost].sort());
    const gaps = gapWarnings(app);
    expect(gaps).toHaveLength(1);
    // The group had read nothing: the span has no start, only the time of the first entry left.
    expect(gaps[0].message).toMatch(/^The events stream of children was trimmed past (\d+|some) entries the group had not read, written before \S+\./);
  });

  test('after a gap found at start-up, whenIdle resolves only once every trimmed failure is handled', async () => {
    const lost = await failedWhileDown(20);
    const app = await spec.start({ withoutBull: true, handlers, options: gapOptions });
    await app.flowFailure.whenIdle(15_000);
    expect(childIds(app)).toEqual([...lost].sort());
  });

  test.each(gapSweepCases)('a gap that forms while the app runs behind is swept at once, not at %s', async (_, sweepOptions) => {
    spec.worker('parents');
    spec.worker('children');
    // One slow handler at a time: the reader falls behind the failures, and the stream is trimmed meanwhile.
    const options = { ...sweepOptions, concurrency: 1 };
    const app = await spec.start({ withoutBull: true, handlers: [recordingHandlers({ child: true }, { delayMs: 50 })], options });
    const failed = await failChildren(60);
    expect(app.log.runs.length).toBeLessThan(60);
    await spec.redis.redis.xtrim(stream, 'MAXLEN', 3);

    // Only a sweep the gap or the reader being behind triggers delivers the trimmed ones before the interval (10 minutes, or never).
    await waitUntil('every failure delivered', () => app.log.runs.length >= 60, 20_000);
    await settle(app);
    expect(childIds(app)).toEqual([...failed].sort());
    expect(app.log.of('child').some((e) => e.source === 'sweep')).toBe(true);
    expect(gapWarnings(app).length).toBeGreaterThanOrEqual(1);
  });

  test('a gap whose queue another replica is sweeping is swept as soon as that sweep ends', async () => {
    const lost = await failedWhileDown(5);
    // Another replica's sweep of children, with a horizon before these failures, ends in 3 s.
    await spec.redis.redis.set(moduleKeys(prefix).sweepLock('children'), 'another-replica', 'PX', 3000);

    const app = await spec.start({ withoutBull: true, handlers, options: gapOptions });
    await waitUntil('every failure delivered', () => app.log.runs.length === 5, 15_000);
    await settle(app);
    expect(childIds(app)).toEqual([...lost].sort());
  });
});
