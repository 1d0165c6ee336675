import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type LiveSource, type ChildFailedEvent, type ParentFailedEvent } from '../../lib/index.js';
import { type TestApp, TestRedis, settle, startApp, uniquePrefix, waitUntil, recordingHandlers, SOURCE_MODES } from '../support/harness.js';

describe.each(SOURCE_MODES)('a three-level failParentOnFailure cascade (sources: %s)', (...sources: LiveSource[]) => {
  const prefix = uniquePrefix('cascade');
  let redis: TestRedis;
  let app: TestApp;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    app = await startApp({ prefix, processors: ['top', 'middle', 'leaf'], handlers: [recordingHandlers({ parent: true, child: true })], options: { sources } });
  });

  afterAll(async () => {
    await app?.close();
    await redis?.close();
  });

  test('names the leaf as the root cause at every level, and fires each event once', async () => {
    const flow = await redis.flows.add({
      name: 'top-job',
      queueName: 'top',
      children: [
        {
          name: 'middle-job',
          queueName: 'middle',
          opts: { failParentOnFailure: true },
          children: [
            {
              name: 'leaf-job',
              queueName: 'leaf',
              data: { fail: true, reason: 'disk full' },
              opts: { failParentOnFailure: true, attempts: 2 },
            },
          ],
        },
      ],
    });
    const top = flow.job.id as string;
    const middle = flow.children?.[0].job.id as string;
    const leaf = flow.children?.[0].children?.[0].job.id as string;

    // top and middle fail as parents; middle and leaf fail as children.
    await waitUntil('four events', () => app.log.runs.length >= 4);
    await settle(app);

    const parents = app.log.of('parent') as ParentFailedEvent[];
    const children = app.log.of('child') as ChildFailedEvent[];
    expect(parents.map((e) => e.jobId).sort()).toEqual([middle, top].sort());
    expect(children.map((e) => e.jobId).sort()).toEqual([leaf, middle].sort());

    const topEvent = parents.find((e) => e.jobId === top) as ParentFailedEvent;
    expect(topEvent.causedByChild).toBe(true);
    expect(topEvent.failedChild).toEqual({ queueName: 'middle', jobId: middle, key: `${prefix}:middle:${middle}` });
    expect(topEvent.rootCause).toMatchObject({ queueName: 'leaf', jobId: leaf, jobName: 'leaf-job', key: `${prefix}:leaf:${leaf}`, failedReason: 'disk full' });
    expect(topEvent.rootCause?.stacktrace?.join('\n')).toContain('disk full');

    const middleAsParent = parents.find((e) => e.jobId === middle) as ParentFailedEvent;
    expect(middleAsParent.failedChild?.jobId).toBe(leaf);
    expect(middleAsParent.rootCause).toMatchObject({ jobId: leaf, failedReason: 'disk full' });

    const middleAsChild = children.find((e) => e.jobId === middle) as ChildFailedEvent;
    expect(middleAsChild).toMatchObject({ parentPolicy: 'fail', parent: { queueName: 'top', jobId: top } });
    // One failure of one job: its parent and child events share the occurrence id.
    expect(middleAsChild.id).toBe(middleAsParent.id);
    const leafEvent = children.find((e) => e.jobId === leaf) as ChildFailedEvent;
    expect(leafEvent).toMatchObject({ failedReason: 'disk full', attemptsMade: 2, parent: { queueName: 'middle', jobId: middle } });
  });
});
