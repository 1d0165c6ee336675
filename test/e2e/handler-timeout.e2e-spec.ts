import 'reflect-metadata';
import { afterEach, describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { type ChildFailedEvent, type HandlerContext, OnChildFailed } from 'nestjs-flow-failure';
import { specResources } from '../support/spec-resources.js';
import { startApp, uniquePrefix, waitUntil } from '../support/harness.js';

/** What the handlers below saw, per job: each attempt's number, and whether its signal was aborted and why. */
const seen: { jobId: string; attempt: number; aborted: () => boolean; reason: () => unknown }[] = [];

@Injectable()
class StuckHandlers {
  /** Never settles (until its signal fires, when `listens`). */
  @OnChildFailed({ queueName: 'items', jobName: 'stuck' })
  stuck(event: ChildFailedEvent, { attempt, signal }: HandlerContext) {
    seen.push({ jobId: event.jobId, attempt, aborted: () => signal.aborted, reason: () => signal.reason });
    return new Promise<void>(() => undefined);
  }

  /** Waits for its signal and stops when it fires, as a well-written handler does. */
  @OnChildFailed({ queueName: 'items', jobName: 'listens' })
  listens(event: ChildFailedEvent, { attempt, signal }: HandlerContext) {
    seen.push({ jobId: event.jobId, attempt, aborted: () => signal.aborted, reason: () => signal.reason });
    if (attempt > 1) return Promise.resolve();
    return new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
  }

  /** Throws a value that has no prototype: it cannot even be turned into a string. */
  @OnChildFailed({ queueName: 'items', jobName: 'bare' })
  bare(event: ChildFailedEvent, { attempt, signal }: HandlerContext) {
    seen.push({ jobId: event.jobId, attempt, aborted: () => signal.aborted, reason: () => signal.reason });
    throw Object.assign(Object.create(null) as object, { code: 'E_BARE' });
  }

  @OnChildFailed({ queueName: 'items', jobName: 'quick' })
  quick(event: ChildFailedEvent, { attempt, signal }: HandlerContext) {
    seen.push({ jobId: event.jobId, attempt, aborted: () => signal.aborted, reason: () => signal.reason });
  }
}

describe('handlers that never settle or throw anything', () => {
  const prefix = uniquePrefix('timeout');
  const spec = specResources(prefix);
  const options = { queues: ['items'], sources: ['stream' as const], concurrency: 1, handlerAttempts: 2, handlerBackoffMs: 0 };
  afterEach(() => {
    seen.length = 0;
  });

  const failItem = async (name: string) => {
    const flow = await spec.redis.flows.add({
      name: 'batch',
      queueName: 'batches',
      children: [{ name, queueName: 'items', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } }],
    });
    return flow.children?.[0].job.id as string;
  };

  test('times out, frees its slot for the next failure, and becomes a dead letter after its attempts', async () => {
    const app = await startApp({ prefix, handlers: [StuckHandlers], withoutBull: true, options: { ...options, handlerTimeoutMs: 300 } });
    spec.apps.push(app);
    spec.workers.push(spec.redis.worker('items'));
    const stuck = await failItem('stuck');
    const quick = await failItem('quick');

    await waitUntil('the dead letter', async () => (await app.flowFailure.getDeadLetters()).length === 1);
    const [letter] = await app.flowFailure.getDeadLetters();
    expect(letter).toMatchObject({ handler: 'StuckHandlers.stuck', jobId: stuck, attempts: 2, lastError: 'timed out after 300 ms (handlerTimeoutMs)' });
    // With one slot, the quick handler ran although the stuck one never returned.
    await waitUntil('the quick handler', () => seen.some((s) => s.jobId === quick));
    const attempts = seen.filter((s) => s.jobId === stuck);
    expect(attempts.map((s) => s.attempt)).toEqual([1, 2]);
    expect(attempts.every((s) => s.aborted())).toBe(true);
    expect(String(attempts[0].reason())).toContain('timed out after 300 ms');
    expect(app.logger.has('warn', /StuckHandlers\.stuck threw for occurrence .* \(attempt 1\/2\): timed out after 300 ms/)).toBe(true);
  });

  test('is told to stop when the app closes, and its claim goes to another instance, not to a failed attempt', async () => {
    const first = await startApp({ prefix, handlers: [StuckHandlers], withoutBull: true, options: { ...options, shutdownTimeoutMs: 2000 } });
    spec.apps.push(first);
    spec.workers.push(spec.redis.worker('items'));
    const item = await failItem('listens');
    await waitUntil('the first attempt', () => seen.length === 1);

    const closing = performance.now();
    await first.close();
    expect(performance.now() - closing).toBeLessThan(2000);
    expect(seen[0]).toMatchObject({ jobId: item, attempt: 1 });
    expect(seen[0].aborted()).toBe(true);

    const second = await startApp({ prefix, handlers: [StuckHandlers], withoutBull: true, options });
    spec.apps.push(second);
    await waitUntil('the run handed over', () => seen.length === 2);
    await second.flowFailure.whenIdle();
    // The aborted run was no failed attempt: the next is attempt 2 of 2, and it completes.
    expect(seen[1]).toMatchObject({ jobId: item, attempt: 2 });
    expect(await second.flowFailure.getDeadLetters()).toEqual([]);
    expect(first.logger.has('warn', /threw for occurrence/)).toBe(false);
  });

  test('a thrown value without a prototype is retried and kept as a dead letter with a readable error', async () => {
    const app = await startApp({ prefix, handlers: [StuckHandlers], withoutBull: true, options });
    spec.apps.push(app);
    spec.workers.push(spec.redis.worker('items'));
    const item = await failItem('bare');
    await waitUntil('the dead letter', async () => (await app.flowFailure.getDeadLetters()).length === 1);
    expect((await app.flowFailure.getDeadLetters())[0]).toMatchObject({ jobId: item, attempts: 2, lastError: "[Object: null prototype] { code: 'E_BARE' }" });
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    expect(app.logger.has('warn', /Could not record the outcome/)).toBe(false);
  });
});
