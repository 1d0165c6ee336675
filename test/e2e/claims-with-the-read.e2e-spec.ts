import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { claimStore, heldClaims, jobLoader, moduleKeys, failureReads } from '../support/internals.js';
import { OnChildFailed } from '../../lib/index.js';
import { EventLog, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

/** A child handler on the watched queue whose job-name filter no failure here matches. */
@Injectable()
class RefundAlerts {
  constructor(private readonly log: EventLog) {}

  @OnChildFailed({ queueName: 'payments', jobName: 'refund' })
  refund(event: Parameters<EventLog['record']>[1]) {
    this.log.record('refund', event);
  }
}

const HANDLER_KEYS = {
  payments: ['child-failed:RecordingHandlers.child', 'child-failed:RefundAlerts.refund'],
  orders: ['parent-failed:RecordingHandlers.parent'],
};

/**
 * While the stream is the primary source, its read script takes the claims of the failures
 * it reads, for every handler of the queue; the dispatcher runs those that match and
 * forgets the rest. These are the ways that could run a handler twice, never, or leave a
 * claim behind.
 */
describe('claims taken with the stream read', () => {
  const prefix = uniquePrefix('read-claims');
  const keys = moduleKeys(prefix);
  const handlers = [recordingHandlers({ parent: 'orders', child: 'payments' }), RefundAlerts];
  const spec = specResources(prefix);

  /** Plain BullMQ Workers outside the app, as in a split deployment. */
  const startWorkers = (...queues: string[]) => queues.forEach((queue) => spec.worker(queue));

  /** No claim is left behind: every lease is settled or forgotten, and the unmatched handler holds no state. */
  const expectNothingHeld = async () => {
    expect(await heldClaims(spec.redis.redis, keys)).toEqual([]);
    // Every occurrence key (all SCAN pages), and there are some: the check is not vacuous.
    const occurrences = await spec.redis.keys(keys.occurrence('*'));
    expect(occurrences.length).toBeGreaterThan(0);
    const unmatched = await Promise.all(occurrences.map((key) => spec.redis.redis.hexists(key, `h:${HANDLER_KEYS.payments[1]}`)));
    expect(unmatched.filter((found) => found === 1)).toEqual([]);
  };


  test('the matching handlers run once, and the claim of a handler whose filter does not match is given back', async () => {
    const app = await spec.start({ handlers, options: { queues: ['orders', 'payments'], sources: ['stream'] } });
    startWorkers('orders', 'payments');
    const flows = await spec.redis.failOrders(20);
    await waitUntil('40 handler runs', () => app.log.runs.length >= 40);
    await settle(app);
    expect(app.log.of('parent').map((e) => e.jobId).sort()).toEqual(flows.map((f) => f.job.id).sort());
    expect(app.log.of('child')).toHaveLength(20);
    expect(app.log.of('refund')).toEqual([]);
    await expectNothingHeld();
  });

  test("a Worker's report and the read racing for the same failure: each handler runs once", async () => {
    // The app's Workers process payments but not orders: the stream stays the primary source
    // (it reads and claims everything), and the Workers report the payments' failures too.
    const app = await spec.start({ processors: ['payments'], handlers, options: { queues: ['orders', 'payments'] } });
    startWorkers('orders');
    const flows = await spec.redis.failOrders(50);
    await waitUntil('100 handler runs', () => app.log.runs.length >= 100);
    await settle(app);
    expect(app.log.of('parent').map((e) => e.jobId).sort()).toEqual(flows.map((f) => f.job.id).sort());
    expect(new Set(app.log.of('child').map((e) => e.jobId)).size).toBe(50);
    expect(app.log.of('child')).toHaveLength(50);
    expect(app.log.of('refund')).toEqual([]);
    await expectNothingHeld();
  });

  test('the snapshot of a read occurrence is stored while its handler runs on, and none for one whose handlers are done', async () => {
    // Quick child handlers, a parent handler that takes 1.5 s: the parents' runs outlive the
    // moment (SnapshotWriter) after which a run still going has its snapshot written.
    const slowParents = recordingHandlers({ parent: 'orders', child: 'payments' }, { delayMs: 1500 });
    const app = await spec.start({ handlers: [slowParents], options: { queues: ['orders', 'payments'], sources: ['stream'] } });
    startWorkers('orders', 'payments');
    const [flow] = await spec.redis.failOrders(1);
    const orderKey = keys.occurrence(`orders:${flow.job.id}:${await finishedOn('orders', flow.job.id as string)}`);
    await waitUntil('the parent handler started', () => app.log.started.some((run) => run.handler === 'parent'));
    await waitUntil('its snapshot stored while it runs', async () => (await spec.redis.redis.hget(orderKey, 'snapshot')) !== null, 1000);
    expect(JSON.parse((await spec.redis.redis.hget(orderKey, 'snapshot')) as string).parentFailed.jobId).toBe(flow.job.id);
    await settle(app);
    // Done: the snapshot goes, the marks stay; the child's occurrence never had one.
    expect(await spec.redis.redis.hget(orderKey, 'snapshot')).toBeNull();
    const childId = flow.children?.[0].job.id as string;
    const childKey = keys.occurrence(`payments:${childId}:${await finishedOn('payments', childId)}`);
    expect(await spec.redis.redis.hgetall(childKey)).toEqual({ [`h:${HANDLER_KEYS.payments[0]}`]: 'done' });
  });

  const finishedOn = async (queue: string, jobId: string) => (await spec.redis.queue(queue).getJob(jobId))?.finishedOn;

  test('a replica that stopped between its read and storing the snapshot, its entries trimmed since: another rebuilds the failures from the jobs, runs each handler once, forgets the unwanted claims', async () => {
    const streams = new Map(['orders', 'payments'].map((queue) => [keys.eventsStream(queue), queue]));
    for (const stream of streams.keys()) await spec.redis.redis.xgroup('CREATE', stream, keys.group, '$', 'MKSTREAM');
    startWorkers('orders', 'payments');
    const flows = await spec.redis.failOrders(5);

    // The replica that stops: it reads the failures and takes their claims (a 100 ms lease), then nothing more.
    const blocking = spec.redis.connection();
    const loader = jobLoader(spec.redis.connection(), keys);
    const stopped = await claimStore(spec.redis.connection(), keys, 'stopped-replica', 100, 60_000);
    const prefetch = failureReads(blocking, keys, 'stopped-replica', [...streams.values()], loader, {
      store: stopped,
      handlers: (queue) => HANDLER_KEYS[queue as keyof typeof HANDLER_KEYS],
    });
    const read = blocking.call('XREADGROUP', 'GROUP', keys.group, 'stopped-replica', 'COUNT', 500, 'STREAMS', ...streams.keys(), '>', '>');
    const claimed = await prefetch.request(500, 500);
    await read;
    await loader.close();
    expect([...(claimed?.jobs ?? new Map()).values()].flatMap((hit) => hit.claimed?.granted ?? [])).toHaveLength(15);
    // And the entries are trimmed away: no stream read brings these failures back, and the
    // sweep finds them recorded. Only the expired claims tell what is left to do.
    for (const stream of streams.keys()) await spec.redis.redis.xtrim(stream, 'MAXLEN', 0);

    const app = await spec.start({ handlers, options: { queues: ['orders', 'payments'], sources: ['stream'], leaseMs: 1000 } });
    await waitUntil('10 handler runs', () => app.log.runs.length >= 10);
    await settle(app);
    await waitUntil('no lease left', async () => (await spec.redis.redis.zcard(keys.leases)) === 0);
    expect(app.log.of('parent').map((e) => e.jobId).sort()).toEqual(flows.map((f) => f.job.id).sort());
    expect(app.log.of('child')).toHaveLength(5);
    expect(app.log.of('refund')).toEqual([]);
    await expectNothingHeld();
  });
});
