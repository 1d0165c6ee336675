import { describe, expect, test } from '@jest/globals';
import { RunQueue } from '../../lib/dispatcher/run-queue.js';
import type { Run } from '../../lib/dispatcher/run.js';

/**
 * The run queue's backpressure, as sources see it: `room` and `whenRoom`. Runs that
 * deliveries under way may still add count against the limit before they are claimed.
 * Where runs are queued, the claim store only settles (when the test says) and the lease
 * keeper keeps nothing.
 */
describe('RunQueue backpressure', () => {
  const queue = (backlogLimit: number, { concurrency = 1, settle = async () => true } = {}) =>
    new RunQueue(
      { settle } as never,
      { hold: () => undefined, unhold: () => undefined } as never,
      { concurrency, handlerBackoffMs: 0, leaseMs: 1000, handlerTimeoutMs: 1000, backlogLimit },
      { add: async () => undefined },
      { attempt: () => ({ end: () => undefined }) },
      () => undefined,
    );

  test('a delivery under way holds its runs against the limit until it has queued them', async () => {
    const runs = queue(10);
    expect(runs.room).toBe(10);
    let finish: () => void = () => undefined;
    const delivering = runs.promise(7, () => new Promise<void>((resolve) => (finish = resolve)));
    expect(runs.room).toBe(3);
    expect(runs.backlog).toBe(7);
    expect(runs.idle).toBe(false);
    finish();
    await delivering;
    expect(runs.room).toBe(10);
    expect(runs.idle).toBe(true);
  });

  test('whenRoom waits while there is none, and resolves once a delivery gives its share back', async () => {
    const runs = queue(4);
    let finish: () => void = () => undefined;
    const delivering = runs.promise(4, () => new Promise<void>((resolve) => (finish = resolve)));
    let roomSeen = false;
    const waiting = runs.whenRoom().then(() => (roomSeen = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(roomSeen).toBe(false);
    finish();
    await delivering;
    await waiting;
    expect(roomSeen).toBe(true);
  });

  test('a hold counts until released, once: claims a read takes before it delivers them', () => {
    const runs = queue(10);
    const release = runs.hold(6);
    expect(runs.room).toBe(4);
    release();
    release();
    expect(runs.room).toBe(10);
  });

  test('a failed delivery gives its share back too; a stopped queue lets every waiter go', async () => {
    const runs = queue(2);
    await expect(runs.promise(2, () => Promise.reject(new Error('Redis down')))).rejects.toThrow('Redis down');
    expect(runs.room).toBe(2);
    const held = runs.promise(2, () => new Promise<void>(() => undefined));
    const waiting = runs.whenRoom();
    await runs.stop();
    await waiting;
    void held;
  });

  test('a run whose handler returned frees its place; runs being settled count only past a second limit', async () => {
    const outcomes: (() => void)[] = [];
    const runs = queue(2, { concurrency: 2, settle: () => new Promise<boolean>((resolve) => outcomes.push(() => resolve(true))) });
    const run = (n: number) =>
      ({ handlerKey: 'h', occurrenceId: `o${n}`, attempt: 1, maxAttempt: 1, event: {}, binding: { name: 'H.h', invoke: async () => undefined } }) as unknown as Run;
    const outcomesPending = async (count: number) => {
      while (outcomes.length < count) await new Promise((resolve) => setImmediate(resolve));
    };
    runs.enqueue(run(1));
    runs.enqueue(run(2));
    expect(runs.room).toBe(0);
    await outcomesPending(2);
    // Both handlers returned; their outcomes are on their way to Redis.
    expect(runs.room).toBe(2);
    expect(runs.backlog).toBe(2);
    expect(runs.idle).toBe(false);
    runs.enqueue(run(3));
    runs.enqueue(run(4));
    await outcomesPending(4);
    // Four outcomes being written: two past the second limit.
    expect(runs.room).toBe(0);
    for (const resolve of outcomes.splice(0)) resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(runs.room).toBe(2);
    expect(runs.idle).toBe(true);
  });
});
