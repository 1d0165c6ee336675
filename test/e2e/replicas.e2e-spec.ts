import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { OnChildFailed, OnParentFailed, type ChildFailedEvent, type LiveSource, type ParentFailedEvent } from '../../lib/index.js';
import { EventLog, type TestApp, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { heldClaims, moduleKeys, sweptUpTo } from '../support/internals.js';
import { specResources } from '../support/spec-resources.js';

const FLOWS = 50;

@Injectable()
class Handlers {
  constructor(private readonly log: EventLog) {}

  @OnParentFailed('orders')
  parent(event: ParentFailedEvent) {
    this.log.record('parent', event);
  }

  @OnChildFailed('payments')
  child(event: ChildFailedEvent) {
    this.log.record('child', event);
  }

  // A second method for the same occurrences: it runs once too, independently.
  @OnParentFailed('orders')
  audit(event: ParentFailedEvent) {
    this.log.record('audit', event);
  }
}

// The default sources, and the stream alone: then each instance reads its share of the stream with the failed jobs.
describe.each([[['worker', 'stream']], [['stream']]] as LiveSource[][][])('two app instances on one prefix and consumer group (sources: %s)', (sources) => {
  const prefix = uniquePrefix('replicas');
  const keys = moduleKeys(prefix);
  const spec = specResources(prefix);

  /** Each handler's runs over both instances, by job id. */
  const counted = (apps: TestApp[]) =>
    Object.fromEntries(['parent', 'audit', 'child'].map((handler) => [handler, apps.flatMap((app) => app.log.of(handler).map((e) => e.jobId)).sort()]));
  /** The latest failure of the queue (its failed set's top score: finishedOn). */
  const lastFailure = async (queue: string) => Number((await spec.redis.redis.zrange(keys.failedSet(queue), '-1', '-1', 'WITHSCORES'))[1]);

  test(`handle ${FLOWS} failing flows exactly ${FLOWS} times per handler between them, and still once after a sweep and a lease have passed`, async () => {
    // Short intervals, so that the sweep and the reapers come round within the test. Each
    // Worker runs one job at a time, and every charge takes 20 ms: while one instance's
    // Worker is busy the other's takes the next job, and failures reach the stream one by
    // one, each read by whichever instance waits for it. Both instances take part.
    const options = { sources, leaseMs: 1000, sweepIntervalMs: 1000 };
    const apps = await Promise.all(
      [0, 1].map(() => spec.start({ processors: ['orders', 'payments'], workerOptions: { concurrency: 1 }, handlers: [Handlers], options })),
    );
    const flows = await spec.redis.flows.addBulk(
      Array.from({ length: FLOWS }, (_, i) => ({
        name: `order-${i}`,
        queueName: 'orders',
        children: [{ name: `charge-${i}`, queueName: 'payments', data: { fail: true, sleepMs: 20 }, opts: { failParentOnFailure: true, attempts: 2 } }],
      })),
    );
    const parentIds = flows.map((flow) => flow.job.id as string).sort();
    const expected = { parent: parentIds, audit: parentIds, child: flows.map((flow) => flow.children?.[0].job.id as string).sort() };
    await waitUntil(`${FLOWS} runs of every handler`, () => Object.values(counted(apps)).every((ids) => ids.length >= FLOWS));
    await settle(...apps);
    expect(counted(apps)).toEqual(expected);
    expect(apps.map((app) => app.log.runs.length > 0)).toEqual([true, true]);

    // Later deliveries could still add a run: the sweep reads the failed sets (failures older
    // than its 5 s grace), and a claim left unsettled is taken over once its lease ends.
    // Nothing is left to take over, and once the sweep has read past the last failure of each
    // queue (far more than a lease later), the counts are the same.
    expect(await heldClaims(spec.redis.redis, keys)).toEqual([]);
    for (const queue of ['orders', 'payments']) {
      const last = await lastFailure(queue);
      await waitUntil(`the sweep passed the last failure of ${queue}`, async () => ((await sweptUpTo(spec.redis.redis, keys, queue)) ?? 0) >= last, 15_000);
    }
    await settle(...apps);
    expect(counted(apps)).toEqual(expected);
    expect(await heldClaims(spec.redis.redis, keys)).toEqual([]);
  });
});
