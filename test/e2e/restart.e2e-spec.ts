import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { type TestApp, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { moduleKeys, toRecord } from '../support/internals.js';
import { specResources } from '../support/spec-resources.js';

/**
 * An app that was not running. It reacts to failures only; the Workers run elsewhere (here:
 * in the test), as in a split deployment. Each test starts its apps from nothing: the first
 * start creates the consumer group, and from then on the group remembers.
 */
describe('an app that was not running', () => {
  const prefix = uniquePrefix('restart');
  const spec = specResources(prefix);
  const keys = moduleKeys(prefix);
  const app = { handlers: [recordingHandlers({ parent: 'orders', child: 'payments' })], options: { queues: ['orders', 'payments'] } };

  /** The group exists (an app ran once), the app is down, and the Workers run. */
  async function ranOnceAndStopped(): Promise<void> {
    await (await spec.start(app)).close();
    spec.worker('orders');
    spec.worker('payments');
  }

  /** Stream entries read by the module's consumer group and not acknowledged, per queue. */
  async function pendingEntries(): Promise<number[]> {
    const summaries = await Promise.all(['orders', 'payments'].map((queue) => spec.redis.redis.xpending(keys.eventsStream(queue), keys.group)));
    return summaries.map((summary) => Number(summary[0]));
  }

  /**
   * The consumer group in each stream: entries pending, and whether it was handed the last
   * entry and counted every entry as read (then XINFO's `lag`, and the module's lag gauge, is 0).
   */
  async function groupStanding(): Promise<{ pending: number; atLastEntry: boolean; lag: unknown; allCounted: boolean }[]> {
    const redis = spec.redis.redis;
    return Promise.all(
      ['orders', 'payments'].map(async (queue) => {
        const stream = keys.eventsStream(queue);
        const info = toRecord((await redis.call('XINFO', 'STREAM', stream)) as unknown[]);
        const groups = ((await redis.call('XINFO', 'GROUPS', stream)) as unknown[][]).map(toRecord);
        const group = groups.find((g) => g.name === keys.group) ?? {};
        return {
          pending: Number(group.pending),
          atLastEntry: group['last-delivered-id'] === info['last-generated-id'],
          lag: group.lag,
          allCounted: group['entries-read'] === info['entries-added'],
        };
      }),
    );
  }

  /** Each handler's job ids over these apps: every one once. */
  const expectOnceEach = (apps: TestApp[], count: number) => {
    for (const handler of ['parent', 'child']) {
      const ids = apps.flatMap((a) => a.log.of(handler).map((event) => event.jobId));
      expect([handler, ids.length, new Set(ids).size]).toEqual([handler, count, count]);
    }
  };

  test('gets the failures that happened while it was closed when it starts again', async () => {
    await ranOnceAndStopped();
    const flows = await spec.redis.failOrders(5);

    const started = await spec.start(app);
    await waitUntil('10 events', () => started.log.runs.length >= 10);
    await settle(started);
    expect(started.log.of('parent').map((e) => e.jobId).sort()).toEqual(flows.map((f) => f.job.id).sort());
    expect(started.log.of('child')).toHaveLength(5);
    expect(started.log.runs.every((run) => run.event.source === 'stream')).toBe(true);
  });

  test('a backlog of several reads, delivered batch beside batch, is handled exactly once', async () => {
    await ranOnceAndStopped();
    const count = 500; // about 2,500 entries in each events stream: five reads of 500 entries
    await spec.redis.failOrders(count);

    const started = await spec.start(app);
    await waitUntil(`${2 * count} events`, () => started.log.runs.length >= 2 * count);
    await settle(started);
    expectOnceEach([started], count);
    // Acknowledged together, a little after their failures were recorded: none left pending once idle.
    expect(await pendingEntries()).toEqual([0, 0]);
  });

  // A catch-up moves the group itself: what it leaves must read as XREADGROUP would have left it.
  test.each([
    ['counted the entries it read before', true],
    ['never read an entry, so Redis does not know its count', false],
  ])('after a catch-up the group stands at the end of each stream, every entry counted: a group that %s', async (_case, readBefore) => {
    const first = await spec.start(app);
    spec.worker('orders');
    spec.worker('payments');
    if (readBefore) {
      await spec.redis.failOrders(1);
      await waitUntil('2 events', () => first.log.runs.length >= 2);
      await settle(first);
    }
    await first.close();
    const count = 200;
    await spec.redis.failOrders(count);
    await waitUntil(`${count} failed orders`, async () => (await spec.redis.queue('orders').getFailedCount()) >= count + (readBefore ? 1 : 0));

    const started = await spec.start(app);
    await waitUntil(`${2 * count} events`, () => started.log.runs.length >= 2 * count);
    await settle(started);
    expectOnceEach([started], count);
    const standing = { pending: 0, atLastEntry: true, lag: 0, allCounted: true };
    expect(await groupStanding()).toEqual([standing, standing]);
  });

  test('closing acknowledges the entries it recorded, instead of handing them to another replica', async () => {
    const started = await spec.start(app);
    spec.worker('orders');
    spec.worker('payments');
    await spec.redis.failOrders(3);
    await waitUntil('6 events', () => started.log.runs.length >= 6);
    await started.close(); // at once: acknowledgements are still waiting to be sent together
    expect(await pendingEntries()).toEqual([0, 0]);
  });

  test('handlers slower than the backlog: reading waits for room, closing meanwhile returns, nothing is lost or run twice', async () => {
    await ranOnceAndStopped();
    // Far slower than the failures arrive: with concurrency 1, the stream reader waits for room.
    const slow = { handlers: [recordingHandlers({ parent: 'orders', child: 'payments' }, { delayMs: 10 })], options: { queues: ['orders', 'payments'], concurrency: 1 } };
    const count = 60;
    await spec.redis.failOrders(count);

    const first = await spec.start(slow);
    await waitUntil('a few slow runs', () => first.log.runs.length >= 5);
    await first.close(); // while the reader waits for the handlers: it must not hold the close up
    const second = await spec.start(slow);
    await waitUntil(`${2 * count} events over both instances`, () => first.log.runs.length + second.log.runs.length >= 2 * count);
    await settle(second);
    expectOnceEach([first, second], count);
  });

  test('a job retried with job.retry() that fails again is a new occurrence, delivered again', async () => {
    const started = await spec.start(app);
    spec.worker('orders');
    spec.worker('payments');
    const flow = await spec.redis.flows.add({
      name: 'order',
      queueName: 'orders',
      children: [{ name: 'charge', queueName: 'payments', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } }],
    });
    const childId = flow.children?.[0].job.id as string;
    await waitUntil('the first failure', () => started.log.of('child').length === 1);

    await (await spec.redis.queue('payments').getJob(childId))?.retry('failed');
    await waitUntil('the second failure', () => started.log.of('child').length === 2);
    await settle(started);
    const [first, second] = started.log.of('child');
    expect(started.log.of('child')).toHaveLength(2);
    expect([first.jobId, second.jobId]).toEqual([childId, childId]);
    expect(second.id).not.toBe(first.id);
    expect(second.id.startsWith(`payments:${childId}:`)).toBe(true);
  });
});
