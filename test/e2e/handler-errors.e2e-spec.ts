import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { OnChildFailed, type ChildFailedEvent } from '../../lib/index.js';
import { EventLog, type TestApp, TestRedis, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';

const prefix = uniquePrefix('handler-errors');

@Injectable()
class FlakyHandlers {
  private readonly seen = new Set<string>();
  /** Flipped by the test to let the broken handler recover. */
  static brokenFixed = false;

  constructor(private readonly log: EventLog) {}

  @OnChildFailed({ queueName: 'children', jobName: 'flaky' })
  throwsOnce(event: ChildFailedEvent) {
    this.log.record('throws-once:attempt', event);
    if (!this.seen.has(event.id)) {
      this.seen.add(event.id);
      throw new Error('downstream timeout');
    }
    this.log.record('throws-once:done', event);
  }

  @OnChildFailed({ queueName: 'children', jobName: 'broken' })
  async alwaysThrows(event: ChildFailedEvent) {
    this.log.record('always:attempt', event);
    if (!FlakyHandlers.brokenFixed) throw new Error(`cannot reach the ledger for ${event.jobId}`);
    this.log.record('always:done', event);
  }
}

describe('handlers that throw', () => {
  let redis: TestRedis;
  let app: TestApp;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    app = await startApp({
      prefix,
      processors: ['parents', 'children'],
      handlers: [FlakyHandlers],
      options: { handlerAttempts: 3, handlerBackoffMs: 50 },
    });
  });

  afterAll(async () => {
    await app?.close();
    await redis?.close();
  });

  test('a handler that throws once runs again after the backoff and completes once', async () => {
    const flow = await redis.flows.add({
      name: 'parent',
      queueName: 'parents',
      children: [{ name: 'flaky', queueName: 'children', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } }],
    });
    await waitUntil('the handler completes', () => app.log.of('throws-once:done').length === 1);
    await settle(app);
    expect(app.log.of('throws-once:attempt')).toHaveLength(2);
    expect(app.log.of('throws-once:done')).toHaveLength(1);
    expect(await app.flowFailure.getDeadLetters()).toEqual([]);
    // The job's own outcome is untouched: the child stays failed, the parent went on.
    expect(await redis.queue('children').getJobState(flow.children?.[0].job.id as string)).toBe('failed');
  });

  test('a handler that always throws is tried handlerAttempts times, kept as a dead letter, and can be replayed', async () => {
    const flow = await redis.flows.add({
      name: 'parent',
      queueName: 'parents',
      children: [{ name: 'broken', queueName: 'children', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } }],
    });
    const childId = flow.children?.[0].job.id as string;
    await waitUntil('a dead letter', async () => (await app.flowFailure.getDeadLetters()).length === 1);
    await settle(app);
    expect(app.log.of('always:attempt')).toHaveLength(3);
    const [letter] = await app.flowFailure.getDeadLetters();
    expect(letter).toMatchObject({
      kind: 'child-failed',
      handler: 'FlakyHandlers.alwaysThrows',
      queueName: 'children',
      jobId: childId,
      attempts: 3,
      lastError: `cannot reach the ledger for ${childId}`,
    });
    expect(letter.occurrenceId).toBe(app.log.of('always:attempt')[0].id);
    expect(app.logger.has('error', new RegExp(`${letter.occurrenceId}.*dead letter`))).toBe(true);

    // The Worker is unaffected: the next jobs are processed as usual.
    const next = await redis.flows.add({ name: 'parent', queueName: 'parents', children: [{ name: 'fine', queueName: 'children' }] });
    await waitUntil('the next flow completes', async () => (await next.job.getState()) === 'completed');

    // Replay while still broken: one more attempt, the letter stays with its count raised.
    expect(await app.flowFailure.replay(letter.id)).toMatchObject({ id: letter.id, ok: false });
    expect((await app.flowFailure.getDeadLetters())[0]).toMatchObject({ id: letter.id, attempts: 4 });

    FlakyHandlers.brokenFixed = true;
    expect(await app.flowFailure.replay(letter.id)).toEqual({ id: letter.id, ok: true });
    expect(app.log.of('always:done')).toHaveLength(1);
    expect(await app.flowFailure.getDeadLetters()).toEqual([]);
    // Replaying again does nothing: the occurrence is done.
    expect(await app.flowFailure.replay(letter.id)).toMatchObject({ ok: false });
    await settle(app);
    expect(app.log.of('always:done')).toHaveLength(1);
  });
});
