import 'reflect-metadata';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { type ChildFailedEvent, OnChildFailed } from 'nestjs-flow-failure';
import { RedisKeys } from '../support/internals.js';
import { type TestApp, TestRedis, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';

const FAILURES = 20_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** The heap that is live now (after a full collection), not what garbage happens to fill. */
const liveHeap = () => {
  gc();
  return process.memoryUsage().heapUsed;
};
const CONCURRENCY = 20;

/** Counts runs per occurrence in the process, without keeping the events (20,000 of them). */
const runs = new Map<string, number>();

@Injectable()
class CountingHandler {
  /** Slower than the sweep and the stream can deliver: without a bound, a backlog would pile up here. */
  @OnChildFailed('items')
  async count(event: ChildFailedEvent) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    runs.set(event.id, (runs.get(event.id) ?? 0) + 1);
  }
}

/**
 * A backlog of the size production has after an outage, on BullMQ's default stream length
 * (most entries trimmed, so most failures come from the sweep): two instances handle every
 * failure exactly once, without crashing, each holding only the claims it can run soon.
 */
describe(`${FAILURES} failures missed while every instance was down`, () => {
  const prefix = uniquePrefix('volume');
  const keys = new RedisKeys(prefix, 'flow-failure');
  const options = { queues: ['items'], sources: ['stream' as const], sweepIntervalMs: 1000, concurrency: CONCURRENCY };
  let redis: TestRedis;
  const apps: TestApp[] = [];
  const start = async () => {
    const app = await startApp({ prefix, handlers: [CountingHandler], withoutBull: true, options });
    apps.push(app);
    return app;
  };

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    await (await start()).close(); // the group and the sweep's checkpoint exist from here on
    apps.length = 0;
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await redis?.close();
  });

  test('two instances handle each failure exactly once, hold no more claims than they can run, and stay within their memory', async () => {
    redis.worker('items', { concurrency: 200 });
    for (let batch = 0; batch < FAILURES / 1000; batch++) {
      await redis.flows.addBulk(
        Array.from({ length: 100 }, (_, i) => ({
          name: `batch-${batch}-${i}`,
          queueName: 'batches',
          children: Array.from({ length: 10 }, () => ({ name: 'item', queueName: 'items', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } })),
        })),
      );
    }
    await waitUntil(`${FAILURES} failed items`, async () => (await redis.queue('items').getFailedCount()) >= FAILURES, 120_000);
    // BullMQ's default stream length: most of the failures' entries are gone.
    const entries = await redis.redis.xrange(keys.eventsStream('items'), '-', '+');
    expect(entries.filter(([, fields]) => fields[1] === 'failed').length).toBeLessThan(FAILURES / 2);

    const heapBefore = liveHeap();
    let peakLeases = 0;
    let peakHeap = 0;
    const sampling = setInterval(() => void redis.redis.zcard(keys.leases).then((n) => (peakLeases = Math.max(peakLeases, n))), 50);
    const heapSampling = setInterval(() => (peakHeap = Math.max(peakHeap, liveHeap())), 1000);
    try {
      const [a, b] = [await start(), await start()];
      await waitUntil(`${FAILURES} handler runs`, () => runs.size >= FAILURES, 120_000);
      await settle(a, b);
    } finally {
      clearInterval(sampling);
      clearInterval(heapSampling);
    }
    expect(runs.size).toBe(FAILURES);
    expect([...runs.values()].filter((count) => count > 1)).toEqual([]);
    // Each instance holds the claims of no more than concurrency x 4 runs waiting or running
    // (its room), and of as many more at most whose outcome is being written.
    expect(peakLeases).toBeLessThanOrEqual(2 * (CONCURRENCY * 4 + CONCURRENCY * 4));
    // The apps hold what they run, not the backlog: the live heap grows by far less than
    // 20,000 held runs' worth (each holds its event and job: several KB).
    expect(peakHeap - heapBefore).toBeLessThan(40 * 1024 * 1024);
    for (const app of apps) expect(app.logger.lines.filter((line) => line.level === 'error')).toEqual([]);
  }, 180_000); // 20 s alone on 2 cores; about a minute beside the rest of the suite
});
