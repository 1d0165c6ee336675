import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { OnChildFailed, OnParentFailed, type ChildFailedEvent, type LiveSource, type ParentFailedEvent } from '../../lib/index.js';
import { EventLog, type TestApp, TestRedis, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';

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
  let redis: TestRedis;
  let apps: TestApp[] = [];

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    const spec = { prefix, processors: ['orders', 'payments'], handlers: [Handlers], options: { sources } };
    apps = [await startApp(spec), await startApp(spec)];
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await redis?.close();
  });

  test(`handle ${FLOWS} failing flows exactly ${FLOWS} times per handler between them`, async () => {
    const flows = await redis.flows.addBulk(
      Array.from({ length: FLOWS }, (_, i) => ({
        name: `order-${i}`,
        queueName: 'orders',
        children: [{ name: `charge-${i}`, queueName: 'payments', data: { fail: true }, opts: { failParentOnFailure: true, attempts: 2 } }],
      })),
    );
    const runs = (handler: string) => apps.flatMap((app) => app.log.of(handler));
    await waitUntil(`${FLOWS} runs of every handler`, () =>
      ['parent', 'child', 'audit'].every((handler) => runs(handler).length >= FLOWS),
    );
    await settle(...apps);

    const parentIds = flows.map((flow) => flow.job.id as string).sort();
    const childIds = flows.map((flow) => flow.children?.[0].job.id as string).sort();
    expect(runs('parent').map((e) => e.jobId).sort()).toEqual(parentIds);
    expect(runs('audit').map((e) => e.jobId).sort()).toEqual(parentIds);
    expect(runs('child').map((e) => e.jobId).sort()).toEqual(childIds);
    // Both instances took part, and each occurrence went to one of them.
    expect(apps.every((app) => app.log.runs.length > 0)).toBe(true);
  });
});
