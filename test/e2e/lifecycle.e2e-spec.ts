import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { Worker } from 'bullmq';
import { OnChildFailed, type ChildFailedEvent } from '../../lib/index.js';
import { EventLog, type TestApp, TestRedis, redisConnection, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';

const prefix = uniquePrefix('lifecycle');

/** What each app instance did, across instances (apps have their own EventLog). */
const started: string[] = [];

@Injectable()
class SlowHandlers {
  static failing = true;

  constructor(private readonly log: EventLog) {}

  @OnChildFailed({ jobName: 'slow' })
  async slow(event: ChildFailedEvent) {
    started.push(event.id);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    this.log.record('slow', event);
  }

  @OnChildFailed({ jobName: 'poison' })
  poison(event: ChildFailedEvent) {
    if (SlowHandlers.failing) throw new Error(`poisoned ${event.jobId}`);
    this.log.record('poison', event);
  }
}

/** Handlers only; the Workers run in the test, as in a split deployment. */
const spec = {
  prefix,
  handlers: [SlowHandlers],
  options: { queues: ['parents', 'children'], shutdownTimeoutMs: 100, handlerAttempts: 2, handlerBackoffMs: 10 },
};

describe('lifecycle', () => {
  let redis: TestRedis;
  let workers: Worker[] = [];
  const apps: TestApp[] = [];

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    const fail = async (job: { name: string }) => {
      if (job.name !== 'parent') throw new Error(`${job.name} failed`);
    };
    workers = ['parents', 'children'].map((q) => new Worker(q, fail, { connection: redisConnection(), prefix }));
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await Promise.all(workers.map((w) => w.close()));
    await redis?.close();
  });

  test('app.close() hands back an unfinished claim, and another instance takes it long before the lease ends', async () => {
    const first = await startApp(spec);
    await redis.flows.add({ name: 'parent', queueName: 'parents', children: [{ name: 'slow', queueName: 'children', opts: { ignoreDependencyOnFailure: true } }] });
    await waitUntil('the slow handler started', () => started.length === 1);
    const closedAt = Date.now();
    await first.close();

    const second = await startApp(spec);
    apps.push(second);
    await waitUntil('the second instance completes it', () => second.log.of('slow').length === 1, 10_000);
    // The default lease is 30 s; the hand-back made it free at once.
    expect(Date.now() - closedAt).toBeLessThan(10_000);
    expect(second.log.of('slow')[0].id).toBe(started[0]);
    await settle(second);
  });

  test('dead letters survive a restart and can be discarded', async () => {
    const app = await startApp(spec);
    const flow = await redis.flows.add({ name: 'parent', queueName: 'parents', children: [{ name: 'poison', queueName: 'children', opts: { ignoreDependencyOnFailure: true } }] });
    const childId = flow.children?.[0].job.id as string;
    await waitUntil('a dead letter', async () => (await app.flowFailure.getDeadLetters()).some((l) => l.jobId === childId));
    await app.close();

    const again = await startApp(spec);
    apps.push(again);
    const letters = (await again.flowFailure.getDeadLetters()).filter((l) => l.jobId === childId);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ attempts: 2, lastError: `poisoned ${childId}`, handler: 'SlowHandlers.poison' });

    expect(await again.flowFailure.discard(letters[0].id)).toBe(true);
    expect((await again.flowFailure.getDeadLetters()).filter((l) => l.jobId === childId)).toEqual([]);
    // Discarded means never run again, even with the handler fixed.
    SlowHandlers.failing = false;
    expect(await again.flowFailure.replay(letters[0].id)).toMatchObject({ ok: false });
    await settle(again);
    expect(again.log.of('poison')).toEqual([]);
  });
});

@Injectable()
class PairHandlers {
  static fixed = false;

  constructor(private readonly log: EventLog) {}

  @OnChildFailed({ jobName: 'pair' })
  dies(event: ChildFailedEvent) {
    if (!PairHandlers.fixed) throw new Error('ledger down');
    this.log.record('dies', event);
  }

  @OnChildFailed({ jobName: 'pair' })
  async slowlySucceeds(event: ChildFailedEvent) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    this.log.record('slow', event);
  }
}

describe('a dead letter beside a handler that succeeded', () => {
  const pairPrefix = uniquePrefix('dead-beside-done');
  let redis: TestRedis;
  let app: TestApp;
  let worker: Worker;

  beforeAll(async () => {
    redis = new TestRedis(pairPrefix);
    app = await startApp({
      prefix: pairPrefix,
      handlers: [PairHandlers],
      options: { queues: ['parents', 'children'], handlerAttempts: 1, leaseMs: 1000, dedupTtlMs: 2000 },
    });
    const fail = async (): Promise<void> => {
      throw new Error('child failed');
    };
    worker = new Worker('children', fail, { connection: redisConnection(), prefix: pairPrefix });
  });

  afterAll(async () => {
    await app?.close();
    await worker?.close();
    await redis?.close();
  });

  test('can still be replayed after the dedup TTL that the successful handler started', async () => {
    await redis.flows.add({ name: 'parent', queueName: 'parents', children: [{ name: 'pair', queueName: 'children', opts: { ignoreDependencyOnFailure: true } }] });
    await waitUntil('the slow handler succeeded', () => app.log.of('slow').length === 1);
    const [letter] = await app.flowFailure.getDeadLetters();
    expect(letter).toMatchObject({ handler: 'PairHandlers.dies', lastError: 'ledger down' });

    await new Promise((resolve) => setTimeout(resolve, 2500)); // past dedupTtlMs: a done occurrence would be forgotten now
    PairHandlers.fixed = true;
    expect(await app.flowFailure.replay(letter.id)).toEqual({ id: letter.id, ok: true });
    expect(app.log.of('dies')).toHaveLength(1);
    expect(app.log.of('slow')).toHaveLength(1);
  });
});
