import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { ChildFailedEvent, LiveSource } from 'nestjs-flow-failure';
import { type TestApp, TestRedis, recordingHandlers, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';

/**
 * A job that failed, was retried and failed again while no app ran: its two `failed`
 * entries come in one read, and both name the job as it is now.
 */
describe.each([[['stream']], [['worker', 'stream']]] as LiveSource[][][])('two failed entries of one job in one read (sources: %j)', (sources) => {
  const prefix = uniquePrefix('retried');
  const options = { queues: ['items'], sources };
  let redis: TestRedis;
  let app: TestApp | undefined;
  const start = () => startApp({ prefix, handlers: [recordingHandlers({ child: 'items' })], withoutBull: true, options });

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    await (await start()).close(); // the consumer group exists from here on
  });

  afterAll(async () => {
    await app?.close();
    await redis?.close();
  });

  test('are handled at once, once, as the later failure, with no take-over', async () => {
    redis.worker('items');
    const flow = await redis.flows.add({
      name: 'batch',
      queueName: 'batches',
      children: [{ name: 'item', queueName: 'items', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } }],
    });
    const job = flow.children?.[0].job;
    const failed = async (n: number) => {
      await waitUntil(`failure ${n}`, async () => (await job?.getState()) === 'failed' && (await redis.queue('items').getJob(job?.id as string))?.attemptsStarted === n);
    };
    await failed(1);
    await (await redis.queue('items').getJob(job?.id as string))?.retry('failed');
    await failed(2);
    const finishedOn = (await redis.queue('items').getJob(job?.id as string))?.finishedOn;

    const started = performance.now();
    app = await start();
    await waitUntil('the handler', () => (app?.log.runs.length ?? 0) >= 1, 5000);
    expect(performance.now() - started).toBeLessThan(5000); // not a lease (30 s) later
    await settle(app);
    const events = app.log.of('child') as ChildFailedEvent[];
    expect(events).toHaveLength(1);
    expect(events[0].id).toBe(`items:${job?.id}:${finishedOn}`);
    expect(app.logger.has('warn', /Took over/)).toBe(false);
  });
});
