import 'reflect-metadata';
import type { JobsOptions } from 'bullmq';
import { describe, expect, test } from '@jest/globals';
import { type ChildFailedEvent } from '../../lib/index.js';
import { type TestApp, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { moduleKeys } from '../support/internals.js';
import { specResources } from '../support/spec-resources.js';

/**
 * What the events stream and the Workers throw at the module. The stream cases run an app
 * with no Worker of the failing queue (a plain Worker outside it fails the jobs) and no
 * sweep: whatever reaches its handlers came through the stream.
 */
describe('what the stream and the Workers throw at the module', () => {
  const prefix = uniquePrefix('robust');
  const keys = moduleKeys(prefix);
  const stream = keys.eventsStream('children');
  const spec = specResources(prefix);

  async function failingChild(opts: JobsOptions = {}): Promise<string> {
    const [childId] = await spec.redis.failChildren(1, { data: { fail: true, reason: 'broken' }, opts });
    return childId;
  }

  /** An app that only reacts (no Worker of its own, no sweep), and the Workers that fail its jobs, outside it. */
  async function streamOnlyApp(): Promise<TestApp> {
    const app = await spec.start({ handlers: [recordingHandlers({ child: true })], options: { queues: ['parents', 'children'], sweepIntervalMs: 0 } });
    spec.worker('parents');
    spec.worker('children');
    return app;
  }

  /** Fails a child and waits until its handler ran; the event it got. */
  async function deliveredFailure(app: TestApp): Promise<ChildFailedEvent> {
    const childId = await failingChild();
    await waitUntil(`child ${childId} handled`, () => app.log.of('child').some((e) => e.jobId === childId));
    await settle(app);
    const events = app.log.of('child').filter((e) => e.jobId === childId) as ChildFailedEvent[];
    expect(events).toHaveLength(1);
    return events[0];
  }

  const groupExists = async () => {
    const groups = (await spec.redis.redis.call('XINFO', 'GROUPS', stream).catch(() => [])) as unknown[][];
    return groups.some((fields) => fields[1] === keys.group);
  };

  test('a child removed by removeOnFail is still delivered, from the Worker that failed it', async () => {
    const app = await spec.start({ processors: ['parents', 'children'], handlers: [recordingHandlers({ child: true })] });
    const childId = await failingChild({ removeOnFail: true });
    await waitUntil('the child event', () => app.log.of('child').some((e) => e.jobId === childId));
    await settle(app);
    const events = app.log.of('child').filter((e) => e.jobId === childId) as ChildFailedEvent[];
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ source: 'worker', failedReason: 'broken', parentPolicy: 'ignore' });
    expect(await spec.redis.queue('children').getJob(childId)).toBeUndefined();
  });

  test('a malformed stream entry is skipped with a warning, and the entries after it are read', async () => {
    const app = await streamOnlyApp();
    await spec.redis.redis.xadd(stream, '*', 'event', 'failed', 'failedReason', 'no job id here');
    expect(await deliveredFailure(app)).toMatchObject({ source: 'stream', failedReason: 'broken' });
    expect(app.logger.has('warn', /malformed entry .*children:events.*has no jobId/)).toBe(true);
    // Skipped means acknowledged: nothing is left pending that another replica would take over and warn about again.
    expect(Number((await spec.redis.redis.xpending(stream, keys.group))[0])).toBe(0);
  });

  test('a deleted events stream and its group are recreated, and the stream delivers again', async () => {
    const app = await streamOnlyApp();
    expect(await deliveredFailure(app)).toMatchObject({ source: 'stream' });
    await spec.redis.redis.del(stream);
    expect(await deliveredFailure(app)).toMatchObject({ source: 'stream' });
    expect(await groupExists()).toBe(true);
    expect(app.logger.has('warn', /events stream or its consumer group was deleted; recreating it/)).toBe(true);
  });

  test('obliterate() deletes the queue with its stream and group: they are recreated, and the stream delivers again', async () => {
    const app = await streamOnlyApp();
    const before = await deliveredFailure(app);
    await spec.redis.queue('children').obliterate({ force: true });
    expect(await spec.redis.queue('children').getJob(before.jobId)).toBeUndefined();
    expect(await deliveredFailure(app)).toMatchObject({ source: 'stream' });
    expect(await groupExists()).toBe(true);
  });
});
