import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Job } from 'bullmq';
import { type LiveSource, type ChildFailedEvent, type ParentFailedEvent } from '../../lib/index.js';
import { type TestApp, TestRedis, settle, startApp, uniquePrefix, waitUntil, recordingHandlers, SOURCE_MODES } from '../support/harness.js';

describe.each(SOURCE_MODES)('a one-level failParentOnFailure flow (sources: %s)', (...sources: LiveSource[]) => {
  const prefix = uniquePrefix('one-level');
  let redis: TestRedis;
  let app: TestApp;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    app = await startApp({ prefix, processors: ['orders', 'payments'], handlers: [recordingHandlers({ parent: 'orders', child: 'payments' })], options: { sources } });
  });

  afterAll(async () => {
    await app?.close();
    await redis?.close();
  });

  test('runs the parent handler and the child handler once each, after all attempts', async () => {
    const flow = await redis.flows.add({
      name: 'place-order',
      queueName: 'orders',
      data: {},
      children: [
        {
          name: 'charge',
          queueName: 'payments',
          data: { fail: true, reason: 'card declined' },
          opts: { failParentOnFailure: true, attempts: 3, backoff: { type: 'fixed', delay: 10 } },
        },
      ],
    });
    const parentId = flow.job.id as string;
    const childId = flow.children?.[0].job.id as string;

    await waitUntil('both handlers ran', () => app.log.runs.length >= 2);
    await settle(app);

    const undo = app.log.of('parent') as ParentFailedEvent[];
    const alert = app.log.of('child') as ChildFailedEvent[];
    expect(undo).toHaveLength(1);
    expect(alert).toHaveLength(1);

    expect(undo[0]).toMatchObject({
      kind: 'parent-failed',
      queueName: 'orders',
      jobId: parentId,
      jobName: 'place-order',
      causedByChild: true,
      failedChild: { queueName: 'payments', jobId: childId, key: `${prefix}:payments:${childId}` },
      rootCause: { queueName: 'payments', jobId: childId, failedReason: 'card declined' },
    });
    expect(undo[0].rootCause?.stacktrace?.[0]).toContain('card declined');
    expect(alert[0]).toMatchObject({
      kind: 'child-failed',
      queueName: 'payments',
      jobId: childId,
      jobName: 'charge',
      failedReason: 'card declined',
      attemptsMade: 3,
      parentPolicy: 'fail',
      parent: { queueName: 'orders', jobId: parentId, key: `${prefix}:orders:${parentId}` },
    });
    expect(alert[0].job?.id).toBe(childId);
    // Whichever source delivered it (a Worker's job, or the stored one read with its stream
    // entry), each event carries the job as a load from Redis gives it.
    for (const [event, queueName, jobId] of [[alert[0], 'payments', childId], [undo[0], 'orders', parentId]] as const) {
      const loaded = await Job.fromId(redis.queue(queueName), jobId);
      expect(storedFacts(event.job)).toEqual(storedFacts(loaded));
    }
    expect(undo[0].id).not.toBe(alert[0].id);
    for (const event of [...undo, ...alert]) expect(sources).toContain(event.source);
  });
});

/** What a handler reads from a failed job; `Job` holds live references (its queue) beside them. */
function storedFacts(job: Job | undefined) {
  if (!job) return undefined;
  const { id, name, data, opts, attemptsMade, finishedOn, processedOn, failedReason, stacktrace, parent, parentKey, timestamp } = job;
  return { id, name, data, opts, attemptsMade, finishedOn, processedOn, failedReason, stacktrace, parent, parentKey, timestamp };
}
