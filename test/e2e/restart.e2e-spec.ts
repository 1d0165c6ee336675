import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Worker } from 'bullmq';
import { type TestApp, TestRedis, redisConnection, settle, startApp, uniquePrefix, waitUntil, recordingHandlers } from '../support/harness.js';

const prefix = uniquePrefix('restart');

/** The app reacts to failures only; Workers run elsewhere (here: in the test), as in a split deployment. */
const spec = { prefix, handlers: [recordingHandlers({ parent: 'orders', child: 'payments' })], options: { queues: ['orders', 'payments'] } };

describe('an app that was not running', () => {
  let redis: TestRedis;
  let workers: Worker[] = [];
  let app: TestApp | undefined;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    const process = async (job: { data: { fail?: boolean } }) => {
      if (job.data.fail) throw new Error('card declined');
    };
    workers = ['orders', 'payments'].map((queue) => new Worker(queue, process, { connection: redisConnection(), prefix }));
  });

  afterAll(async () => {
    await app?.close();
    await Promise.all(workers.map((worker) => worker.close()));
    await redis?.close();
  });

  /** Stream entries read by the module's consumer group and not acknowledged, per queue. */
  async function pendingEntries(): Promise<number[]> {
    const summaries = await Promise.all(
      ['orders', 'payments'].map((queue) => redis.redis.xpending(`${prefix}:${queue}:events`, 'flow-failure')),
    );
    return summaries.map((summary) => Number((summary as unknown[])[0]));
  }


  test('gets the failures that happened while it was closed when it starts again', async () => {
    // First start creates the consumer group; from then on the group remembers.
    app = await startApp(spec);
    await app.close();

    const flows = await redis.failOrders(5);

    app = await startApp(spec);
    await waitUntil('10 events', () => app!.log.runs.length >= 10);
    await settle(app);
    expect(app.log.of('parent').map((e) => e.jobId).sort()).toEqual(flows.map((f) => f.job.id).sort());
    expect(app.log.of('child')).toHaveLength(5);
    expect(app.log.runs.every((run) => run.event.source === 'stream')).toBe(true);
  });

  test('a backlog of several reads, delivered batch beside batch, is handled exactly once', async () => {
    await app?.close();
    const count = 500; // about 2,500 entries in each events stream: five reads of 500 entries
    await redis.failOrders(count);

    app = await startApp(spec);
    await waitUntil(`${2 * count} events`, () => app!.log.runs.length >= 2 * count);
    await settle(app);
    const parents = app.log.of('parent').map((e) => e.jobId);
    const children = app.log.of('child').map((e) => e.jobId);
    expect(parents).toHaveLength(count);
    expect(new Set(parents).size).toBe(count);
    expect(children).toHaveLength(count);
    expect(new Set(children).size).toBe(count);
    // Acknowledged together, a little after their failures were recorded: none left pending once idle.
    expect(await pendingEntries()).toEqual([0, 0]);
  });

  test('closing acknowledges the entries it recorded, instead of handing them to another replica', async () => {
    app ??= await startApp(spec);
    const before = app.log.runs.length;
    await redis.failOrders(3);
    await waitUntil('6 events', () => app!.log.runs.length >= before + 6);
    await app.close(); // at once: acknowledgements are still waiting to be sent together
    app = undefined;
    expect(await pendingEntries()).toEqual([0, 0]);
  });

  test('handlers slower than the backlog: reading waits for room, closing meanwhile returns, nothing is lost or run twice', async () => {
    await app?.close();
    app = undefined;
    // Far slower than the failures arrive: with concurrency 1, the stream reader waits for room.
    const slowHandlers = recordingHandlers({ parent: 'orders', child: 'payments' }, { delayMs: 10 });
    const slow = { prefix, handlers: [slowHandlers], options: { queues: ['orders', 'payments'], concurrency: 1 } };
    const count = 60;
    await redis.failOrders(count);

    const first = await startApp(slow);
    await waitUntil('a few slow runs', () => first.log.runs.length >= 5);
    await first.close(); // while the reader waits for the handlers: it must not hold the close up
    const second = await startApp(slow);
    try {
      const runs = () => [...first.log.runs, ...second.log.runs];
      await waitUntil(`${2 * count} events over both instances`, () => runs().length >= 2 * count);
      await settle(second);
      for (const handler of ['parent', 'child']) {
        const ids = runs().filter((run) => run.handler === handler).map((run) => run.event.jobId);
        expect(ids).toHaveLength(count);
        expect(new Set(ids).size).toBe(count);
      }
    } finally {
      await second.close();
    }
  });

  test('a job retried with job.retry() that fails again is a new occurrence, delivered again', async () => {
    app ??= await startApp(spec);
    const before = app.log.of('child').length;
    const flow = await redis.flows.add({
      name: 'order',
      queueName: 'orders',
      children: [{ name: 'charge', queueName: 'payments', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } }],
    });
    const childId = flow.children?.[0].job.id as string;
    const mine = () => app!.log.of('child').slice(before).filter((e) => e.jobId === childId);
    await waitUntil('the first failure', () => mine().length === 1);

    const child = await redis.queue('payments').getJob(childId);
    await child?.retry('failed');
    await waitUntil('the second failure', () => mine().length === 2);
    await settle(app);
    const [first, second] = mine();
    expect(mine()).toHaveLength(2);
    expect(second.id).not.toBe(first.id);
    expect(second.id.startsWith(`payments:${childId}:`)).toBe(true);
  });
});
