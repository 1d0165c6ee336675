import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { OnChildFailed, type ChildFailedEvent } from '../../lib/index.js';
import { Breakage, EventLog, type TestApp, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

@Injectable()
class FlakyHandlers {
  private readonly seen = new Set<string>();
  /** When each attempt of alwaysThrows began. */
  readonly attemptsAt: number[] = [];

  constructor(
    private readonly log: EventLog,
    private readonly breakage: Breakage,
  ) {}

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
  alwaysThrows(event: ChildFailedEvent) {
    this.attemptsAt.push(Date.now());
    this.log.record('always:attempt', event);
    this.breakage.check(event.jobId, `cannot reach the ledger for ${event.jobId}`);
    this.log.record('always:done', event);
  }
}

describe('handlers that throw', () => {
  const prefix = uniquePrefix('handler-errors');
  const spec = specResources(prefix);
  const start = (handlerAttempts = 3, handlerBackoffMs = 50) =>
    spec.start({ processors: ['parents', 'children'], handlers: [FlakyHandlers], options: { handlerAttempts, handlerBackoffMs } });
  const failChild = async (name: string) => (await spec.redis.failChildren(1, { name }))[0];
  const deadLetterOf = async (app: TestApp, childId: string) => {
    await waitUntil('a dead letter', async () => (await app.flowFailure.getDeadLetters()).length === 1);
    await settle(app);
    const [letter] = await app.flowFailure.getDeadLetters();
    expect(letter).toMatchObject({ kind: 'child-failed', handler: 'FlakyHandlers.alwaysThrows', queueName: 'children', jobId: childId });
    return letter;
  };

  test('a handler that throws once runs again after the backoff and completes once', async () => {
    const app = await start();
    const childId = await failChild('flaky');
    await waitUntil('the handler completes', () => app.log.of('throws-once:done').length === 1);
    await settle(app);
    expect(app.log.of('throws-once:attempt')).toHaveLength(2);
    expect(app.log.of('throws-once:done')).toHaveLength(1);
    expect(await app.flowFailure.getDeadLetters()).toEqual([]);
    // The job's own outcome is untouched: the child stays failed, the parent went on.
    expect(await spec.redis.queue('children').getJobState(childId)).toBe('failed');
  });

  test('a handler that always throws is tried handlerAttempts times, each wait double the one before, then kept as a dead letter', async () => {
    const app = await start(4, 100);
    const childId = await failChild('broken');
    const letter = await deadLetterOf(app, childId);
    expect(letter).toMatchObject({ attempts: 4, lastError: `cannot reach the ledger for ${childId}` });
    expect(letter.occurrenceId).toBe(app.log.of('always:attempt')[0].id);
    expect(app.logger.has('error', new RegExp(`${letter.occurrenceId}.*dead letter`))).toBe(true);

    // The waits it announces double from handlerBackoffMs, and it really waits them between attempts.
    const announced = app.logger.lines.map((line) => /alwaysThrows threw .*trying again in (\d+) ms/.exec(line.message)?.[1]).filter(Boolean).map(Number);
    expect(announced).toEqual([100, 200, 400]);
    const { attemptsAt } = app.app.get(FlakyHandlers);
    expect(attemptsAt).toHaveLength(4);
    attemptsAt.slice(1).forEach((at, i) => expect(at - attemptsAt[i]).toBeGreaterThanOrEqual(announced[i] - 2));

    // The Worker is unaffected: the next jobs are processed as usual.
    const next = await spec.redis.flows.add({ name: 'parent', queueName: 'parents', children: [{ name: 'fine', queueName: 'children' }] });
    await waitUntil('the next flow completes', async () => (await next.job.getState()) === 'completed');
  });

  test('a dead letter replayed while still broken stays, its attempts raised; once fixed it clears; replayed again, nothing runs', async () => {
    const app = await start();
    const letter = await deadLetterOf(app, await failChild('broken'));
    expect(letter.attempts).toBe(3);

    expect(await app.flowFailure.replay(letter.id)).toMatchObject({ id: letter.id, ok: false });
    expect((await app.flowFailure.getDeadLetters())[0]).toMatchObject({ id: letter.id, attempts: 4 });

    app.app.get(Breakage).fixExcept();
    expect(await app.flowFailure.replay(letter.id)).toEqual({ id: letter.id, ok: true });
    expect(app.log.of('always:done')).toHaveLength(1);
    expect(await app.flowFailure.getDeadLetters()).toEqual([]);
    // Replaying again does nothing: the occurrence is done.
    expect(await app.flowFailure.replay(letter.id)).toMatchObject({ ok: false });
    await settle(app);
    expect(app.log.of('always:done')).toHaveLength(1);
  });
});
