import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type ChildFailedEvent } from '../../lib/index.js';
import { type TestApp, TestRedis, settle, startApp, uniquePrefix, waitUntil, recordingHandlers } from '../support/harness.js';

const prefix = uniquePrefix('robust');

async function failingChild(redis: TestRedis, opts: object = {}) {
  const flow = await redis.flows.add({
    name: 'parent',
    queueName: 'parents',
    children: [{ name: 'child', queueName: 'children', data: { fail: true, reason: 'broken' }, opts: { ignoreDependencyOnFailure: true, ...opts } }],
  });
  return flow.children?.[0].job.id as string;
}

describe('what the stream and the Workers throw at the module', () => {
  let redis: TestRedis;
  let app: TestApp;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    app = await startApp({ prefix, processors: ['parents', 'children'], handlers: [recordingHandlers({ child: true })] });
  });

  afterAll(async () => {
    await app?.close();
    await redis?.close();
  });

  test('a child removed by removeOnFail is still delivered, from the Worker that failed it', async () => {
    const childId = await failingChild(redis, { removeOnFail: true });
    await waitUntil('the child event', () => app.log.of('child').some((e) => e.jobId === childId));
    await settle(app);
    const events = app.log.of('child').filter((e) => e.jobId === childId) as ChildFailedEvent[];
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ source: 'worker', failedReason: 'broken', parentPolicy: 'ignore' });
    expect(await redis.queue('children').getJob(childId)).toBeUndefined();
  });

  test('a malformed stream entry is skipped with a warning, and reading goes on', async () => {
    await redis.redis.xadd(`${prefix}:children:events`, '*', 'event', 'failed', 'failedReason', 'no job id here');
    const childId = await failingChild(redis);
    await waitUntil('the next child event', () => app.log.of('child').some((e) => e.jobId === childId));
    await settle(app);
    expect(app.logger.has('warn', /malformed entry .*children:events.*has no jobId/)).toBe(true);
  });

  test('a deleted events stream and its group are recreated, and delivery goes on', async () => {
    await redis.redis.del(`${prefix}:children:events`);
    const childId = await failingChild(redis, {});
    await waitUntil('the child event', () => app.log.of('child').some((e) => e.jobId === childId));
    // The stream's own delivery (not only the Worker's) must work again: a failure from outside the app.
    const groups = async () => (await redis.redis.call('XINFO', 'GROUPS', `${prefix}:children:events`)) as unknown[];
    await waitUntil('the group is back', async () => (await groups().catch(() => [])).length === 1);
    await settle(app);
    expect(app.log.of('child').filter((e) => e.jobId === childId)).toHaveLength(1);
  });
});
