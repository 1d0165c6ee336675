import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { OnChildFailed, type ChildFailedEvent } from '../../lib/index.js';
import { Breakage, EventLog, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { heldClaims, moduleKeys } from '../support/internals.js';
import { specResources } from '../support/spec-resources.js';

@Injectable()
class LedgerHandlers {
  constructor(
    private readonly log: EventLog,
    private readonly breakage: Breakage,
  ) {}

  @OnChildFailed({ jobName: 'broken' })
  post(event: ChildFailedEvent) {
    this.breakage.check(event.jobId, `ledger down for ${event.jobId}`);
    this.log.record('posted', event);
  }
}

/** FlowFailureService and the limits of one instance, as a user sees them. */
describe('FlowFailureService and the run limits', () => {
  const prefix = uniquePrefix('service');
  const keys = moduleKeys(prefix);
  const spec = specResources(prefix);

  const failChildren = (count: number, name = 'broken') => spec.redis.failChildren(count, { name });

  test('dead letters are listed oldest first; replayAll replays them in that order; discardAll forgets the rest, never to run again', async () => {
    const app = await spec.start({ processors: ['parents', 'children'], handlers: [LedgerHandlers], options: { handlerAttempts: 1 } });
    // Three dead letters, one after the other.
    const jobs: string[] = [];
    for (let i = 1; i <= 3; i++) {
      jobs.push(...(await failChildren(1)));
      await waitUntil(`dead letter ${i}`, async () => (await app.flowFailure.getDeadLetters()).length === i);
    }
    const letters = await app.flowFailure.getDeadLetters();
    expect(letters.map((letter) => letter.jobId)).toEqual(jobs);
    expect(letters.map((letter) => letter.failedAt)).toEqual([...letters.map((letter) => letter.failedAt)].sort((a, b) => a - b));

    // Fixed for the first and the last only.
    app.app.get(Breakage).fixExcept(jobs[1]);
    const results = await app.flowFailure.replayAll();
    expect(results.map((result) => [result.id, result.ok])).toEqual(letters.map((letter, i) => [letter.id, i !== 1]));
    expect(app.log.of('posted').map((event) => event.jobId)).toEqual([jobs[0], jobs[2]]);
    expect(await app.flowFailure.getDeadLetters()).toEqual([expect.objectContaining({ jobId: jobs[1], attempts: 2 })]);

    expect(await app.flowFailure.discardAll()).toBe(1);
    expect(await app.flowFailure.getDeadLetters()).toEqual([]);
    app.app.get(Breakage).fixExcept();
    expect(await app.flowFailure.replay(letters[1].id)).toMatchObject({ ok: false });
    await settle(app);
    expect(app.log.of('posted').map((event) => event.jobId)).toEqual([jobs[0], jobs[2]]);
  });

  test('whenIdle(timeoutMs) rejects once timeoutMs has passed with a handler still running, and resolves once it is done', async () => {
    const app = await spec.start({ processors: ['parents', 'children'], handlers: [recordingHandlers({ child: true })] });
    app.log.hold();
    await failChildren(1, 'slow');
    await waitUntil('the handler runs', () => app.log.running === 1);
    const asked = Date.now();
    await expect(app.flowFailure.whenIdle(300)).rejects.toThrow('FlowFailureModule still busy after 300 ms');
    expect(Date.now() - asked).toBeGreaterThanOrEqual(300);
    app.log.release();
    await app.flowFailure.whenIdle(5000);
    expect(app.log.runs).toHaveLength(1);
  });

  test('concurrency caps the handler runs at once in one instance; the others wait their turn', async () => {
    const app = await spec.start({ processors: ['parents', 'children'], handlers: [recordingHandlers({ child: true })], options: { concurrency: 2 } });
    app.log.hold();
    const children = await failChildren(5, 'slow');
    // All five claimed here (running or queued behind the two that run).
    await waitUntil('five claims held', async () => (await heldClaims(spec.redis.redis, keys)).length === 5);
    expect([app.log.running, app.log.started.length]).toEqual([2, 2]);
    app.log.release();
    await waitUntil('every handler ran', () => app.log.runs.length === 5);
    await settle(app);
    expect(app.log.of('child').map((event) => event.jobId).sort()).toEqual([...children].sort());
    expect(app.log.maxRunning).toBe(2);
  });
});
