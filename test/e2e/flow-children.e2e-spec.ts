import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { FlowChildren, LiveSource, ParentFailedEvent } from 'nestjs-flow-failure';
import { SOURCE_MODES, type TestApp, TestRedis, recordingHandlers, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';

/** The children of a ParentFailedEvent as `queue/jobId` per group, sorted, for comparing. */
function groups(children: FlowChildren) {
  const names = (list: { queueName: string; jobId: string }[]) => list.map((c) => `${c.queueName}/${c.jobId}`).sort();
  return { completed: names(children.completed), failed: names(children.failed), ignored: names(children.ignored), pending: names(children.pending) };
}

const recordingSettled = recordingHandlers({ parent: { queueName: 'orders', settled: true } }, { as: 'settled' });

describe.each(SOURCE_MODES)('the children of a failed parent (sources: %s)', (...sources: LiveSource[]) => {
  const prefix = uniquePrefix('children');
  let redis: TestRedis;
  let app: TestApp;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    app = await startApp({
      prefix,
      processors: ['orders', 'payments', 'stock', 'mail', 'top', 'middle', 'leaf'],
      handlers: [recordingHandlers({ parent: { queueName: ['orders', 'top', 'middle'] } }), recordingSettled],
      options: { sources },
    });
  });

  afterAll(async () => {
    await app?.close();
    await redis?.close();
  });

  test('every group, with siblings that end after the parent failed; a settled handler sees them end', async () => {
    const flow = await redis.flows.add({
      name: 'place-order',
      queueName: 'orders',
      children: [
        { name: 'charge', queueName: 'payments', data: { result: { charged: 42 } }, opts: { jobId: 'pay-1', removeOnComplete: true } },
        { name: 'notify', queueName: 'mail', data: { fail: true, reason: 'bad address' }, opts: { jobId: 'mail-1', ignoreDependencyOnFailure: true } },
        { name: 'reserve', queueName: 'stock', data: { fail: true, reason: 'out of stock', sleepMs: 300 }, opts: { jobId: 'stock-1', failParentOnFailure: true } },
        { name: 'refund-later', queueName: 'payments', data: { sleepMs: 1500, result: 'late' }, opts: { jobId: 'pay-late' } },
        { name: 'reserve-later', queueName: 'stock', data: { sleepMs: 1500, fail: true, reason: 'late failure' }, opts: { jobId: 'stock-late', failParentOnFailure: true } },
      ],
    });
    await waitUntil('both parent handlers', () => app.log.of('parent').length >= 1 && app.log.of('settled').length >= 1, 10_000);
    await settle(app);

    const [now] = app.log.of('parent') as ParentFailedEvent[];
    const [settled] = app.log.of('settled') as ParentFailedEvent[];
    expect(app.log.of('parent')).toHaveLength(1);
    expect(app.log.of('settled')).toHaveLength(1);
    expect(now.jobId).toBe(flow.job.id);
    expect(settled.id).toBe(now.id);
    expect(groups(now.children)).toEqual({
      completed: ['payments/pay-1'],
      failed: ['stock/stock-1'],
      ignored: ['mail/mail-1'],
      pending: ['payments/pay-late', 'stock/stock-late'],
    });
    expect(groups(settled.children)).toEqual({
      completed: ['payments/pay-1', 'payments/pay-late'],
      failed: ['stock/stock-1', 'stock/stock-late'],
      ignored: ['mail/mail-1'],
      pending: [],
    });
    // The return value outlives removeOnComplete (the job and its name are gone).
    expect(now.children.completed.find((c) => c.queueName === 'payments')).toEqual({ queueName: 'payments', jobId: 'pay-1', key: `${prefix}:payments:pay-1`, returnValue: { charged: 42 } });
    expect(settled.children.completed.find((c) => c.jobId === 'pay-late')).toMatchObject({ jobName: 'refund-later', returnValue: 'late' });
    expect(now.children.ignored[0]).toMatchObject({ jobName: 'notify', failedReason: 'bad address' });
    expect(settled.children.failed.find((c) => c.jobId === 'stock-late')).toMatchObject({ jobName: 'reserve-later', failedReason: 'late failure' });
    expect(now.children.truncated).toBe(false);
  });

  test('three levels: each parent lists its own direct children', async () => {
    const flow = await redis.flows.add({
      name: 'top-job',
      queueName: 'top',
      children: [
        {
          name: 'middle-job',
          queueName: 'middle',
          opts: { failParentOnFailure: true },
          children: [{ name: 'leaf-job', queueName: 'leaf', data: { fail: true, reason: 'disk full' }, opts: { failParentOnFailure: true } }],
        },
      ],
    });
    const middle = flow.children?.[0].job.id as string;
    const leaf = flow.children?.[0].children?.[0].job.id as string;
    await waitUntil('top and middle', () => app.log.of('parent').filter((e) => e.queueName !== 'orders').length >= 2, 10_000);
    await settle(app);
    const byQueue = (queue: string) => app.log.of('parent').find((e) => e.queueName === queue) as ParentFailedEvent;
    expect(groups(byQueue('top').children)).toEqual({ completed: [], failed: [`middle/${middle}`], ignored: [], pending: [] });
    expect(groups(byQueue('middle').children)).toEqual({ completed: [], failed: [`leaf/${leaf}`], ignored: [], pending: [] });
    expect(byQueue('top').rootCause).toMatchObject({ jobId: leaf, failedReason: 'disk full' });
  });

  test("a continueParentOnFailure child that failed is among `failed` when the parent's own processor then fails", async () => {
    const flow = await redis.flows.add({
      name: 'place-order',
      queueName: 'orders',
      data: { fail: true, reason: 'order rejected' },
      children: [{ name: 'charge', queueName: 'payments', data: { fail: true, reason: 'card declined' }, opts: { continueParentOnFailure: true } }],
    });
    const charge = flow.children?.[0].job.id as string;
    await waitUntil('the order', () => app.log.of('parent').some((e) => e.jobId === flow.job.id), 10_000);
    await settle(app);
    const event = app.log.of('parent').find((e) => e.jobId === flow.job.id) as ParentFailedEvent;
    expect(event).toMatchObject({ causedByChild: false, failedReason: 'order rejected' });
    expect(event.children.failed).toEqual([{ queueName: 'payments', jobId: charge, key: `${prefix}:payments:${charge}`, jobName: 'charge', failedReason: 'card declined' }]);
    expect(groups(event.children)).toMatchObject({ completed: [], ignored: [], pending: [] });
  });
});
