import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { ChildFailedEvent } from 'nestjs-flow-failure';
import { RedisKeys, claimStore, jobLoader, failureReads } from '../support/internals.js';
import { type TestApp, TestRedis, recordingHandlers, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';
import { type OwnRedisServer, startRedisServer } from '../support/redis-server.mjs';

/**
 * Failed jobs whose stored data is broken, beside healthy ones, on a Redis of the test's
 * own (so that the module's commands can be counted): each broken one is isolated and
 * logged once, and nothing else waits for it.
 */
describe('one bad failed job among good ones', () => {
  const prefix = uniquePrefix('bad-data');
  const keys = new RedisKeys(prefix, 'flow-failure', ['items']);
  const handlers = [recordingHandlers({ child: 'items' })];
  const options = { queues: ['items'], sources: ['stream' as const], sweepIntervalMs: 1000, leaseMs: 1000 };
  let server: OwnRedisServer;
  let redis: TestRedis;
  const apps: TestApp[] = [];
  const start = async (more: { queues?: string[]; leaseMs?: number } = {}) => {
    const app = await startApp({ prefix, redisUrl: server.url, handlers, withoutBull: true, options: { ...options, ...more, connection: { host: '127.0.0.1', port: server.port } } });
    apps.push(app);
    return app;
  };

  /** `count` failed children of queue `items` (their parents wait, unprocessed), failed by a Worker outside the app. */
  const failChildren = async (count: number) => {
    const before = await redis.queue('items').getFailedCount();
    const flows = await redis.flows.addBulk(
      Array.from({ length: count }, (_, i) => ({
        name: `batch-${i}`,
        queueName: 'batches',
        children: [{ name: 'item', queueName: 'items', data: { fail: true, reason: `item ${i} broken` }, opts: { ignoreDependencyOnFailure: true } }],
      })),
    );
    const ids = flows.map((flow) => flow.children?.[0].job.id as string);
    await waitUntil(`${count} failed items`, async () => (await redis.queue('items').getFailedCount()) >= before + count);
    return ids;
  };

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new TestRedis(prefix, server.url);
    redis.worker('items');
    // Started once: the consumer group and the sweep's checkpoint exist from then on.
    await (await start()).close();
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  afterAll(async () => {
    await redis?.close();
    await server?.stop();
  });

  test('a job whose data or options do not parse is delivered without `job`; one that cannot be read at all is set aside; the rest are delivered at once', async () => {
    const ids = await failChildren(30);
    const [badData, badOptions, wrongType, badAndTrimmed] = [ids[3], ids[5], ids[7], ids[1]];
    await redis.redis.hset(keys.job('items', badData), 'data', '{oops');
    await redis.redis.hset(keys.job('items', badOptions), 'opts', 'not json');
    await redis.redis.hset(keys.job('items', badAndTrimmed), 'data', '[');
    // A job key that holds another type: HGETALL fails on it, in a script or not.
    await redis.redis.del(keys.job('items', wrongType));
    await redis.redis.set(keys.job('items', wrongType), 'not a hash');
    // Half the stream's entries are gone: those failures come from the sweep.
    const stream = keys.eventsStream('items');
    const length = await redis.redis.xlen(stream);
    await redis.redis.xtrim(stream, 'MAXLEN', Math.floor(length / 2));

    const app = await start();
    const good = ids.filter((id) => id !== wrongType);
    await waitUntil('29 items handled', () => app.log.runs.length >= good.length);
    await settle(app);
    const events = app.log.of('child') as ChildFailedEvent[];
    expect(events.map((e) => e.jobId).sort()).toEqual([...good].sort());
    for (const event of events) {
      expect(event.parent.queueName).toBe('batches');
      expect(event.parentPolicy).toBe('ignore');
      expect(event.failedReason).toBe(`item ${ids.indexOf(event.jobId)} broken`);
      expect(event.job === undefined).toBe([badData, badOptions, badAndTrimmed].includes(event.jobId));
    }
    expect(events.find((e) => e.jobId === badData)?.jobName).toBe('item');

    const lines = (pattern: RegExp) => app.logger.lines.filter((line) => pattern.test(line.message));
    expect(lines(new RegExp(`items:${badData} has stored fields that are not valid JSON \\(data\\)`))).toHaveLength(1);
    expect(lines(new RegExp(`items:${badOptions} has stored fields that are not valid JSON \\(opts\\)`))).toHaveLength(1);
    expect(lines(new RegExp(`Could not classify the failure of items:${wrongType}: WRONGTYPE`))).toHaveLength(1);
    expect(await app.flowFailure.getUnclassifiedFailures()).toEqual([
      expect.objectContaining({ queueName: 'items', jobId: wrongType, error: expect.stringContaining('WRONGTYPE') }),
    ]);

    // Nothing loops on the bad job: over three idle seconds, the reader blocks (2 s per read)
    // instead of re-reading, and no entry stays pending.
    const reads = async () => Number(/cmdstat_xreadgroup:calls=(\d+)/.exec(await redis.redis.info('commandstats'))?.[1] ?? 0);
    const before = await reads();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect((await reads()) - before).toBeLessThan(10);
    expect(await redis.redis.xpending(stream, keys.group)).toEqual([0, null, null, null]);
    expect(app.log.runs).toHaveLength(good.length);
  });

  test("claims whose failure cannot be rebuilt do not stop the take-over of the others", async () => {
    const ids = await failChildren(6);
    // A replica reads and claims these failures, then stops before anything else (no
    // snapshot stored), and its entries are trimmed away: only the take-over can deliver them.
    const blocking = redis.connection();
    const dead = await claimStore(redis.connection(), keys, 'dead-replica', 1000, 60_000);
    const loader = jobLoader(redis.connection(), keys);
    const script = failureReads(blocking, keys, 'dead-replica', ['items'], loader, { store: dead, handlers: () => ['child-failed:RecordingHandlers.child'] });
    const read = blocking.call('XREADGROUP', 'GROUP', keys.group, 'dead-replica', 'COUNT', 100, 'STREAMS', keys.eventsStream('items'), '>');
    const claimed = await script.request(100, 100);
    await read;
    await loader.close();
    expect([...(claimed?.jobs ?? new Map()).values()].flatMap((hit) => hit.claimed?.granted ?? [])).toHaveLength(6);
    await redis.redis.xtrim(keys.eventsStream('items'), 'MAXLEN', 0);
    await redis.redis.hset(keys.job('items', ids[0]), 'data', '{oops');
    await redis.redis.del(keys.job('items', ids[1]));
    await redis.redis.set(keys.job('items', ids[1]), 'not a hash');

    const app = await start();
    await waitUntil('the five others handled', () => app.log.runs.length >= 5);
    await waitUntil('no lease left', async () => (await redis.redis.zcard(keys.leases)) === 0);
    await settle(app);
    expect(app.log.of('child').map((e) => e.jobId).sort()).toEqual(ids.filter((id) => id !== ids[1]).sort());
    expect(app.log.of('child').find((e) => e.jobId === ids[0])?.job).toBeUndefined();
  });

  test('a bad job the read script reaches on another stream than the one that woke its read: the entries it took are read again, none stays pending', async () => {
    // Leases far longer than the test: only the reader's own re-read can deliver what the failing script took.
    const app = await start({ queues: ['items', 'batches'], leaseMs: 120_000 });
    await failChildren(1);
    await waitUntil('the first item handled', () => app.log.runs.length >= 1);

    // One command writes to both streams; the script behind the read that the first entry
    // wakes reads on to the second, a failure whose job key holds a string: it fails there.
    await redis.redis.set(keys.job('items', 'not-a-hash'), 'not a hash');
    await redis.redis
      .multi()
      .xadd(keys.eventsStream('batches'), '*', 'event', 'waiting', 'jobId', 'some-batch')
      .xadd(keys.eventsStream('items'), '*', 'event', 'failed', 'jobId', 'not-a-hash', 'failedReason', 'broken', 'prev', 'active')
      .exec();
    const lines = () => app.logger.lines.filter((line) => /Could not classify the failure of items:not-a-hash: WRONGTYPE/.test(line.message));
    await waitUntil('the bad job set aside', () => lines().length === 1);
    const pending = async () => (await Promise.all(['items', 'batches'].map((queue) => redis.redis.xpending(keys.eventsStream(queue), keys.group))))
      .map(([count]) => count);
    await waitUntil('no entry pending', async () => (await pending()).every((count) => count === 0));

    await failChildren(1);
    await waitUntil('the next item handled', () => app.log.runs.length >= 2);
    expect(lines()).toHaveLength(1);
  });
});
