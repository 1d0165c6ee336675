import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { JobsOptions } from 'bullmq';
import { type ChildFailedEvent, type ParentFailedEvent, type ParentPolicy } from '../../lib/index.js';
import { type TestApp, TestRedis, settle, startApp, uniquePrefix, waitUntil, recordingHandlers } from '../support/harness.js';

const prefix = uniquePrefix('policy');

const CASES: { policy: ParentPolicy; opts: JobsOptions; parentFails: boolean }[] = [
  { policy: 'fail', opts: { failParentOnFailure: true }, parentFails: true },
  { policy: 'continue', opts: { continueParentOnFailure: true }, parentFails: false },
  { policy: 'ignore', opts: { ignoreDependencyOnFailure: true }, parentFails: false },
  { policy: 'remove', opts: { removeDependencyOnFailure: true }, parentFails: false },
  { policy: 'wait', opts: {}, parentFails: false },
];

describe('each parentPolicy', () => {
  let redis: TestRedis;
  let app: TestApp;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    app = await startApp({ prefix, processors: ['parents', 'children'], handlers: [recordingHandlers({ parent: 'parents', child: { queueName: 'children', parentQueueName: 'parents' } })] });
  });

  afterAll(async () => {
    await app?.close();
    await redis?.close();
  });

  test.each(CASES)('$policy: the child fires once with parentPolicy $policy; the parent fails only under fail', async ({ policy, opts, parentFails }) => {
    const before = app.log.runs.length;
    const flow = await redis.flows.add({
      name: `parent-${policy}`,
      queueName: 'parents',
      children: [{ name: `child-${policy}`, queueName: 'children', data: { fail: true, reason: `${policy} child broke` }, opts }],
    });
    const parentId = flow.job.id as string;
    const childId = flow.children?.[0].job.id as string;

    await waitUntil('the child event', () => app.log.of('child').some((e) => e.jobId === childId));
    if (parentFails) await waitUntil('the parent event', () => app.log.of('parent').some((e) => e.jobId === parentId));
    else if (policy !== 'wait') {
      // The parent goes on without the child and completes: wait for that, then nothing may have fired for it.
      await waitUntil('the parent completes', async () => (await redis.queue('parents').getJobState(parentId)) === 'completed');
    }
    await settle(app);

    const runs = app.log.runs.slice(before);
    const child = runs.filter((r) => r.handler === 'child').map((r) => r.event as ChildFailedEvent);
    expect(child).toHaveLength(1);
    expect(child[0]).toMatchObject({ jobId: childId, parentPolicy: policy, failedReason: `${policy} child broke`, parent: { jobId: parentId } });
    const parent = runs.filter((r) => r.handler === 'parent').map((r) => r.event as ParentFailedEvent);
    expect(parent).toHaveLength(parentFails ? 1 : 0);
    if (policy === 'wait') expect(await redis.queue('parents').getJobState(parentId)).toBe('waiting-children');
  });
});
