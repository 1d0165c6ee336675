import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { OnChildFailed, type ChildFailedEvent, type LiveSource, type ParentFailedEvent } from '../../lib/index.js';
import { Breakage, EventLog, SOURCE_MODES, addCascade, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

/**
 * Jobs that no longer exist when a handler runs. The README: `job` is the failed job as the
 * Worker that failed it had it (a job removed by `removeOnFail` is known to it alone), else as
 * it is stored now, else undefined; `rootCause` is the leaf as this app saw it fail, else the
 * last job on the path that still exists, and undefined when the failed child itself is gone.
 */
describe.each(SOURCE_MODES)('jobs removed by removeOnFail (sources: %s)', (...sources: LiveSource[]) => {
  const prefix = uniquePrefix('removed');
  const spec = specResources(prefix);
  const start = () =>
    spec.start({ processors: ['top', 'middle', 'leaf', 'parents', 'children'], handlers: [recordingHandlers({ parent: true, child: true })], options: { sources } });
  /** A Worker of the app reports the failures: it still has the removed jobs in memory. */
  const withWorker = sources.includes('worker');

  test(withWorker ? 'the root cause is the leaf the Worker saw fail, though it is gone' : 'the root cause is the last job on the path that still exists; undefined when the failed child itself is gone', async () => {
    const app = await start();
    const { top, middle, leaf } = await addCascade(spec.redis.flows, { removeOnFail: true });
    await waitUntil('the top failed', async () => (await spec.redis.queue('top').getJobState(top)) === 'failed');
    await waitUntil('both parent events', () => app.log.of('parent').length === 2);
    await settle(app);
    const parent = (jobId: string) => app.log.of('parent').find((event) => event.jobId === jobId) as ParentFailedEvent;
    expect(parent(middle).failedChild?.jobId).toBe(leaf);
    if (withWorker) {
      expect(parent(middle).rootCause).toMatchObject({ queueName: 'leaf', jobId: leaf });
      expect(parent(top).rootCause).toMatchObject({ queueName: 'leaf', jobId: leaf });
    } else {
      // The middle job names its failed child, which is gone: no root cause.
      expect(parent(middle).rootCause).toBeUndefined();
      // The top's path goes through the middle job, the last that still exists.
      expect(parent(top).rootCause).toMatchObject({ queueName: 'middle', jobId: middle });
    }
  });

  if (withWorker) {
    test("a child removed by removeOnFail, delivered by its Worker: the event's job is the Worker's, with its data", async () => {
      const app = await start();
      const [childId] = await spec.redis.failChildren(1, { opts: { removeOnFail: true } });
      await waitUntil('the child event', () => app.log.of('child').length === 1);
      await settle(app);
      expect(await spec.redis.queue('children').getJob(childId)).toBeUndefined();
      expect(app.log.of('child')[0]).toMatchObject({ jobId: childId, source: 'worker' });
      expect(app.log.of('child')[0].job).toMatchObject({ id: childId, data: { fail: true } });
    });
  }
});

@Injectable()
class LedgerHandlers {
  constructor(
    private readonly log: EventLog,
    private readonly breakage: Breakage,
  ) {}

  @OnChildFailed()
  post(event: ChildFailedEvent) {
    this.breakage.check(event.jobId, 'ledger down');
    this.log.record('posted', event);
  }
}

describe('a dead letter whose job was removed since', () => {
  const prefix = uniquePrefix('removed-letter');
  const spec = specResources(prefix);

  test('replayed, its event has no job, and the rest of what happened', async () => {
    const app = await spec.start({ processors: ['parents', 'children'], handlers: [LedgerHandlers], options: { handlerAttempts: 1 } });
    const [childId] = await spec.redis.failChildren(1, { data: { fail: true, reason: 'card declined' } });
    await waitUntil('a dead letter', async () => (await app.flowFailure.getDeadLetters()).length === 1);
    await (await spec.redis.queue('children').getJob(childId))?.remove();

    app.app.get(Breakage).fixExcept();
    const [letter] = await app.flowFailure.getDeadLetters();
    expect(await app.flowFailure.replay(letter.id)).toEqual({ id: letter.id, ok: true });
    const [event] = app.log.of('posted') as ChildFailedEvent[];
    expect(event).toMatchObject({ jobId: childId, failedReason: 'card declined', parentPolicy: 'ignore' });
    expect(event.job).toBeUndefined();
  });
});
