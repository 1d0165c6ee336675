import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { OnParentFailed, type ParentFailedEvent } from 'nestjs-flow-failure';
import { RedisKeys } from '../support/internals.js';
import { Breakage, EventLog, TestRedis, recordingHandlers, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

/** A settled refund that throws while the app's Breakage says so. */
@Injectable()
class RefundHandlers {
  constructor(
    private readonly log: EventLog,
    private readonly breakage: Breakage,
  ) {}

  @OnParentFailed({ queueName: 'orders', settled: { timeoutMs: 1000 } })
  refund(event: ParentFailedEvent) {
    this.breakage.check(event.jobId, `bank down for ${event.jobId}`);
    this.log.record('refund', event);
  }
}

/** A compensation service beside the Workers: it processes no queue, and waits for the flows' siblings. */
describe('a settled delivery', () => {
  const prefix = uniquePrefix('settled');
  const keys = new RedisKeys(prefix, 'flow-failure');
  const spec = specResources(prefix);
  const start = async (settled: true | { timeoutMs: number } = true) => {
    const app = await startApp({
      prefix,
      withoutBull: true,
      handlers: [recordingHandlers({ parent: { queueName: 'orders', settled } }, { as: 'settled' })],
      options: { queues: ['orders'], leaseMs: 1000 },
    });
    spec.apps.push(app);
    return app;
  };
  /** An order whose stock reservation fails it, beside a charge (`siblingOpts`) that takes `chargeMs` and completes. */
  const placeOrder = (siblingOpts: object, { redis = spec.redis, chargeMs = 0 } = {}) =>
    redis.flows.add({
      name: 'place-order',
      queueName: 'orders',
      children: [
        { name: 'reserve', queueName: 'stock', data: { fail: true, reason: 'out of stock' }, opts: { failParentOnFailure: true } },
        { name: 'charge', queueName: 'payments', data: { result: { charged: 7 }, sleepMs: chargeMs }, opts: siblingOpts },
      ],
    });
  const parked = async () => {
    const [member] = await spec.redis.redis.zrange(keys.leases, '0', '0');
    if (!member) return false;
    const state = await spec.redis.redis.hget(keys.occurrence(member.slice(member.indexOf('|') + 1)), `h:${member.slice(0, member.indexOf('|'))}`);
    return state?.startsWith('wait|') ?? false;
  };

  test('waits across a restart: the sibling completes while no instance runs, and one of two new ones runs it once', async () => {
    for (const queue of ['orders', 'stock']) spec.workers.push(spec.redis.worker(queue));
    const first = await start();
    const flow = await placeOrder({ jobId: 'charge-1' });
    await waitUntil('the claim parked', parked);
    await first.close();

    // The sibling runs now, with no instance of the service up.
    spec.workers.push(spec.redis.worker('payments'));
    await waitUntil('the charge completed', async () => (await spec.redis.queue('payments').getJobState('charge-1')) === 'completed');

    const [a, b] = [await start(), await start()];
    await waitUntil('the settled handler', () => a.log.runs.length + b.log.runs.length >= 1, 10_000);
    await settle(a, b);
    const events = [...first.log.of('settled'), ...a.log.of('settled'), ...b.log.of('settled')] as ParentFailedEvent[];
    expect(events).toHaveLength(1);
    expect(events[0].jobId).toBe(flow.job.id);
    expect(events[0].children.pending).toEqual([]);
    expect(events[0].children.completed).toEqual([expect.objectContaining({ jobId: 'charge-1', returnValue: { charged: 7 } })]);
    expect(await spec.redis.redis.zcard(keys.leases)).toBe(0);
  });

  test('is bounded: a sibling that never finishes lets the handler run after timeoutMs, with it pending', async () => {
    for (const queue of ['orders', 'stock', 'payments']) spec.workers.push(spec.redis.worker(queue));
    const app = await start({ timeoutMs: 2000 });
    // A sibling delayed by an hour: still pending when the wait runs out.
    const flow = await placeOrder({ jobId: 'charge-2', delay: 3_600_000 });
    await waitUntil('the claim parked', parked);
    await waitUntil('the settled handler', () => app.log.runs.length >= 1, 10_000);
    await settle(app);
    const [event] = app.log.of('settled') as ParentFailedEvent[];
    expect(app.log.of('settled')).toHaveLength(1);
    expect(event.jobId).toBe(flow.job.id);
    expect(event.children.pending).toEqual([expect.objectContaining({ jobId: 'charge-2', jobName: 'charge' })]);
  });

  test('on a Redis up for less than leaseMs, runs once as soon as the sibling completes', async () => {
    // A server of the test's own, started just now: with the default leaseMs (30 s) it stays
    // younger than a lease for the whole test, so no claim may be taken over (LeaseTrust).
    const server = await spec.server();
    const redis = spec.closeAfter(new TestRedis(prefix, server.url));
    for (const queue of ['orders', 'stock', 'payments']) redis.worker(queue);
    const app = await spec.start({
      redisUrl: server.url,
      withoutBull: true,
      handlers: [recordingHandlers({ parent: { queueName: 'orders', settled: true } }, { as: 'settled' })],
      options: { queues: ['orders'] },
    });
    // The charge takes a second: it completes about a second after the order failed.
    const flow = await placeOrder({ jobId: 'charge-3' }, { redis, chargeMs: 1000 });
    await waitUntil('the order failed', async () => (await flow.job.getState()) === 'failed');
    const failedAt = (await redis.queue('orders').getJob(flow.job.id as string))?.finishedOn as number;
    await waitUntil('the settled handler', () => app.log.runs.length >= 1, 10_000);
    const ranAfterMs = Date.now() - failedAt;
    await settle(app);
    const events = app.log.of('settled') as ParentFailedEvent[];
    expect(events).toHaveLength(1);
    expect(events[0].children.pending).toEqual([]);
    expect(events[0].children.completed).toEqual([expect.objectContaining({ jobId: 'charge-3', returnValue: { charged: 7 } })]);
    // The charge completed about 1 s after the failure; the owner looks again within a second or two.
    expect(ranAfterMs).toBeLessThan(5000);
    expect(await redis.redis.zcard(keys.leases)).toBe(0);
  });

  test('a replay gets the children as they are now: a sibling that completed after the dead letter', async () => {
    for (const queue of ['orders', 'stock']) spec.workers.push(spec.redis.worker(queue));
    const app = await spec.start({ withoutBull: true, handlers: [RefundHandlers], options: { queues: ['orders'], leaseMs: 1000, handlerAttempts: 1 } });
    // No Worker for the charge yet: the wait runs out with it pending, and the refund throws.
    const flow = await placeOrder({ jobId: 'charge-4' });
    await waitUntil('a dead letter', async () => (await app.flowFailure.getDeadLetters()).length === 1);
    const [letter] = await app.flowFailure.getDeadLetters();
    expect((letter.event as ParentFailedEvent).children.pending).toEqual([expect.objectContaining({ jobId: 'charge-4' })]);

    spec.workers.push(spec.redis.worker('payments'));
    await waitUntil('the charge completed', async () => (await spec.redis.queue('payments').getJobState('charge-4')) === 'completed');
    app.app.get(Breakage).fixExcept();
    expect(await app.flowFailure.replay(letter.id)).toMatchObject({ ok: true });
    const events = app.log.of('refund') as ParentFailedEvent[];
    expect(events).toHaveLength(1);
    expect(events[0].jobId).toBe(flow.job.id);
    expect(events[0].children.pending).toEqual([]);
    expect(events[0].children.completed).toEqual([expect.objectContaining({ jobId: 'charge-4', returnValue: { charged: 7 } })]);
  });
});
