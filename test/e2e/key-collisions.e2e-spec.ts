import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type TestApp, TestRedis, recordingHandlers, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';

/**
 * A queue named like the module's own keys, with job ids that spell the module's key
 * suffixes: none of its keys may be the module's.
 */
describe('a queue named flow-failure', () => {
  const prefix = uniquePrefix('collide');
  let redis: TestRedis;
  let app: TestApp;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    app = await startApp({ prefix, processors: ['flow-failure', 'batches'], handlers: [recordingHandlers({ child: 'flow-failure' })], options: { sweepIntervalMs: 1000 } });
  });

  afterAll(async () => {
    await app?.close();
    await redis?.close();
  });

  test('with job ids such as flow-failure:sweep:flow-failure: each handled once', async () => {
    // BullMQ takes custom ids with a ':' when they have three parts.
    const ids = ['flow-failure:sweep:flow-failure', 'flow-failure:sweep:batches', 'flow-failure:sweep-lock:flow-failure', 'flow-failure::leases'];
    await redis.flows.addBulk(
      ids.map((jobId) => ({
        name: 'batch',
        queueName: 'batches',
        children: [{ name: 'item', queueName: 'flow-failure', data: { fail: true }, opts: { jobId, ignoreDependencyOnFailure: true } }],
      })),
    );
    await waitUntil('four handler runs', () => app.log.runs.length >= ids.length);
    // Past a sweep, which reads and writes the module's keys beside these jobs.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await settle(app);
    expect(app.log.of('child').map((e) => e.jobId).sort()).toEqual([...ids].sort());
    expect(app.logger.lines.filter((line) => line.level !== 'log')).toEqual([]);
  });
});
