import 'reflect-metadata';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';
import express from 'express';
import { type ChildFailedEvent, OnChildFailed, deadLetterQueueName } from 'nestjs-flow-failure';
import { EventLog, type TestApp, TestRedis, redisConnection, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';

@Injectable()
class LedgerHandler {
  static fixed = false;

  constructor(private readonly log: EventLog) {}

  @OnChildFailed('items')
  book(event: ChildFailedEvent) {
    this.log.record('attempt', event);
    if (!LedgerHandler.fixed) throw new Error(`ledger down for ${event.jobId}`);
    this.log.record('done', event);
  }
}

/**
 * Dead letters in bull-board, the dashboard most BullMQ teams run: its own HTTP API lists
 * them, retries them (the handler runs once more) and removes them (discarded).
 */
describe('dead letters in bull-board', () => {
  const prefix = uniquePrefix('dlq');
  let redis: TestRedis;
  let app: TestApp;
  let server: Server;
  let board: string;
  let deadLetterQueue: Queue;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    app = await startApp({ prefix, withoutBull: true, handlers: [LedgerHandler], options: { queues: ['items'], handlerAttempts: 1 } });
    redis.worker('items');
    deadLetterQueue = new Queue(deadLetterQueueName(), { connection: redisConnection(), prefix });
    const serverAdapter = new ExpressAdapter().setBasePath('/board');
    createBullBoard({ queues: [new BullMQAdapter(deadLetterQueue)], serverAdapter });
    const http = express().use('/board', serverAdapter.getRouter());
    server = await new Promise<Server>((resolve) => {
      const listening = http.listen(0, '127.0.0.1', () => resolve(listening));
    });
    const address = server.address() as { port: number };
    board = `http://127.0.0.1:${address.port}/board/api/queues/${encodeURIComponent(deadLetterQueueName())}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await deadLetterQueue?.close();
    await app?.close();
    await redis?.close();
  });

  const failItem = async () => {
    const flow = await redis.flows.add({
      name: 'batch',
      queueName: 'batches',
      children: [{ name: 'item', queueName: 'items', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } }],
    });
    const jobId = flow.children?.[0].job.id as string;
    await waitUntil('its dead letter', async () => (await app.flowFailure.getDeadLetters()).some((letter) => letter.jobId === jobId));
    return (await app.flowFailure.getDeadLetters()).find((letter) => letter.jobId === jobId) as Awaited<ReturnType<TestApp['flowFailure']['getDeadLetters']>>[number];
  };
  /** What bull-board lists among the dead-letter queue's failed jobs. */
  const listed = async () => {
    const reply = (await (await fetch(`${board.replace(/\/queues\/.*/, '/queues')}?activeQueue=${encodeURIComponent(deadLetterQueueName())}&status=failed`)).json()) as {
      queues: { name: string; jobs: { id: string; failedReason: string; data: { event: ChildFailedEvent; handler: string } }[] }[];
    };
    return reply.queues.find((queue) => queue.name === deadLetterQueueName())?.jobs ?? [];
  };
  const put = async (jobId: string, action: 'retry' | 'clean') => {
    const reply = await fetch(`${board}/${encodeURIComponent(jobId)}/${action}`, { method: 'PUT' });
    expect(reply.status).toBe(204);
  };

  test('listed with the event and the last error; retried from the dashboard, the handler runs once more', async () => {
    const letter = await failItem();
    const [job] = (await listed()).filter((j) => j.data.event.jobId === letter.jobId);
    expect(job).toMatchObject({ failedReason: `ledger down for ${letter.jobId}`, data: { handler: 'LedgerHandler.book', event: { kind: 'child-failed', jobId: letter.jobId, queueName: 'items' } } });

    LedgerHandler.fixed = true;
    await put(job.id, 'retry');
    await waitUntil('the handler done', () => app.log.of('done').some((e) => e.jobId === letter.jobId));
    await settle(app);
    expect(app.log.of('done').filter((e) => e.jobId === letter.jobId)).toHaveLength(1);
    await waitUntil('the dead letter gone', async () => (await app.flowFailure.getDeadLetters()).every((l) => l.id !== letter.id));

    // Retried once more from the dashboard (its completed replay job): nothing runs again.
    await put(job.id, 'retry');
    await waitUntil('the retry handled', async () => (await deadLetterQueue.getJobState(job.id)) === 'completed');
    await settle(app);
    expect(app.log.of('done').filter((e) => e.jobId === letter.jobId)).toHaveLength(1);
    expect(await app.flowFailure.getDeadLetters()).toEqual([]);
    LedgerHandler.fixed = false;
  });

  test('removed from the dashboard, a dead letter is discarded: its handler is never run again', async () => {
    const letter = await failItem();
    const [job] = (await listed()).filter((j) => j.data.event.jobId === letter.jobId);
    await put(job.id, 'clean');
    expect(await app.flowFailure.getDeadLetters()).toEqual([]);
    expect(await app.flowFailure.replay(letter.id)).toMatchObject({ ok: false });
    await settle(app);
    expect(app.log.of('attempt').filter((e) => e.jobId === letter.jobId)).toHaveLength(1);
  });

  test('FlowFailureService works over the same queue: paged, replayed, discarded', async () => {
    const [first, second, third] = [await failItem(), await failItem(), await failItem()];
    expect(await app.flowFailure.countDeadLetters()).toBe(3);
    expect((await app.flowFailure.getDeadLetters({ limit: 2 })).map((l) => l.id)).toEqual([first.id, second.id]);
    expect((await app.flowFailure.getDeadLetters({ offset: 2 })).map((l) => l.id)).toEqual([third.id]);

    expect(await app.flowFailure.replay(first.id)).toMatchObject({ id: first.id, ok: false, error: `ledger down for ${first.jobId}` });
    expect((await app.flowFailure.getDeadLetters()).find((l) => l.id === first.id)).toMatchObject({ attempts: 2 });
    expect(await app.flowFailure.discard(second.id)).toBe(true);
    expect(await app.flowFailure.discard(second.id)).toBe(false);
    LedgerHandler.fixed = true;
    // Oldest first by the time each last failed: the first failed again when it was replayed.
    expect(await app.flowFailure.replayAll()).toEqual([
      { id: third.id, ok: true },
      { id: first.id, ok: true },
    ]);
    expect(await app.flowFailure.getDeadLetters()).toEqual([]);
    const these = [first.jobId, second.jobId, third.jobId];
    expect(app.log.of('done').filter((e) => these.includes(e.jobId)).map((e) => e.jobId).sort()).toEqual([first.jobId, third.jobId].sort());
  });

  test('kept for deadLetterTtlMs: older ones are removed', async () => {
    LedgerHandler.fixed = false;
    const letter = await failItem();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // An instance whose retention is a second removes it as it starts.
    const strict = await startApp({ prefix, withoutBull: true, handlers: [LedgerHandler], options: { queues: ['items'], deadLetterTtlMs: 1000 } });
    try {
      await waitUntil('the old dead letter removed', async () => (await strict.flowFailure.countDeadLetters()) === 0);
      expect(await app.flowFailure.getDeadLetters()).toEqual([]);
      expect(await strict.flowFailure.replay(letter.id)).toMatchObject({ ok: false });
    } finally {
      await strict.close();
    }
  });
});
