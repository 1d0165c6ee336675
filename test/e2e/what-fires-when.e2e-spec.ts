import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import type { FlowJob, JobsOptions } from 'bullmq';
import { type ChildFailedEvent, type LiveSource, type ParentFailedEvent, type ParentPolicy } from '../../lib/index.js';
import { SOURCE_MODES, type TestApp, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

const POLICY_OPTIONS: Record<ParentPolicy, JobsOptions> = {
  fail: { failParentOnFailure: true },
  continue: { continueParentOnFailure: true },
  ignore: { ignoreDependencyOnFailure: true },
  remove: { removeDependencyOnFailure: true },
  wait: {},
};

/** The README's table "What fires when", row by row, with each live source alone and both together. */
describe.each(SOURCE_MODES)('what fires when (sources: %s)', (...sources: LiveSource[]) => {
  const prefix = uniquePrefix('fires');
  const spec = specResources(prefix);

  /** An app whose handlers hear every failure of the three queues; Workers for `processors` only. */
  const start = (processors = ['parents', 'middles', 'children']) =>
    spec.start({ processors, handlers: [recordingHandlers({ parent: true, child: true })], options: { sources, queues: ['parents', 'middles', 'children'] } });
  const events = (app: TestApp) => ({
    parent: app.log.of('parent') as ParentFailedEvent[],
    child: app.log.of('child') as ChildFailedEvent[],
  });
  const state = (queue: string, id: string | undefined) => spec.redis.queue(queue).getJobState(id as string);
  /** A parent with one child that fails with `policy`; `parent` is the parent's own data. */
  const flow = (policy: ParentPolicy, parent: object = {}): FlowJob => ({
    name: `parent-${policy}`,
    queueName: 'parents',
    data: parent,
    children: [{ name: `child-${policy}`, queueName: 'children', data: { fail: true, reason: `${policy} child broke` }, opts: POLICY_OPTIONS[policy] }],
  });

  test.each(Object.keys(POLICY_OPTIONS) as ParentPolicy[])(
    'a child failing under %s: the child fires once with that parentPolicy; the parent fires only under fail',
    async (policy) => {
      const app = await start();
      const { job: parent, children } = await spec.redis.flows.add(flow(policy));
      const childId = children?.[0].job.id;
      // Where the parent ends: failed by its child, processed and completed, or waiting for ever.
      const end = { fail: 'failed', continue: 'completed', ignore: 'completed', remove: 'completed', wait: 'waiting-children' }[policy];
      await waitUntil(`the parent ${end}`, async () => (await state('parents', parent.id)) === end);
      await waitUntil('the child event', () => app.log.of('child').length === 1);
      await settle(app);

      const { parent: parents, child } = events(app);
      expect(child).toHaveLength(1);
      expect(child[0]).toMatchObject({ jobId: childId, parentPolicy: policy, failedReason: `${policy} child broke`, parent: { queueName: 'parents', jobId: parent.id } });
      if (policy === 'fail') {
        expect(parents).toHaveLength(1);
        expect(parents[0]).toMatchObject({ jobId: parent.id, causedByChild: true, failedChild: { jobId: childId }, rootCause: { jobId: childId } });
      } else {
        expect(parents).toEqual([]);
      }
    },
  );

  test("failParentOnFailure with no Worker on the parent's queue: the child fires, the parent waits and fires nothing", async () => {
    const app = await start(['children']);
    const { job: parent } = await spec.redis.flows.add(flow('fail'));
    // BullMQ moved the parent to wait, for a Worker of its queue to fail it.
    await waitUntil('the parent moved to wait', async () => (await state('parents', parent.id)) === 'waiting');
    await waitUntil('the child event', () => app.log.of('child').length === 1);
    // Every stream entry read and acknowledged: all BullMQ wrote about both jobs was seen.
    await settle(app);
    expect(events(app).child.map((e) => e.parentPolicy)).toEqual(['fail']);
    expect(events(app).parent).toEqual([]);
    expect(await state('parents', parent.id)).toBe('waiting');
  });

  /** A child failing under `policy`, then the parent's own processor: what the README promises for continue and ignore. */
  async function parentsOwnFailureAfter(policy: ParentPolicy): Promise<void> {
    const app = await start();
    const { job: parent, children } = await spec.redis.flows.add(flow(policy, { fail: true, reason: 'parent broke' }));
    await waitUntil('the parent failed', async () => (await state('parents', parent.id)) === 'failed');
    await waitUntil('the child event', () => app.log.of('child').length === 1);
    await settle(app);
    const { parent: parents, child } = events(app);
    expect(child.map((e) => [e.jobId, e.parentPolicy])).toEqual([[children?.[0].job.id, policy]]);
    expect(parents).toHaveLength(1);
    expect(parents[0]).toMatchObject({ jobId: parent.id, causedByChild: false, failedReason: 'parent broke' });
    expect(parents[0].failedChild).toBeUndefined();
    expect(parents[0].rootCause).toBeUndefined();
  }

  test.each(['continue', 'ignore'] as ParentPolicy[])(
    "a child failing under %s, then the parent's own processor: the child fires, and the parent once, as its own failure",
    parentsOwnFailureAfter,
  );

  // removeDependencyOnFailure takes the failed child out of the parent's :dependencies and
  // records it nowhere else: a parent whose every child went that way keeps none of the
  // children bookkeeping by which BullMQ (and the module) tell a parent. Its own failure is a
  // plain job's then, as the README's table says.
  test("a child failing under remove, then the parent's own processor: the child fires; the parent, no longer a parent to BullMQ, fires nothing", async () => {
    const app = await start();
    const { job: parent, children } = await spec.redis.flows.add(flow('remove', { fail: true, reason: 'parent broke' }));
    await waitUntil('the parent failed', async () => (await state('parents', parent.id)) === 'failed');
    await waitUntil('the child event', () => app.log.of('child').length === 1);
    await settle(app);
    const { parent: parents, child } = events(app);
    expect(child.map((e) => [e.jobId, e.parentPolicy])).toEqual([[children?.[0].job.id, 'remove']]);
    expect(parents).toEqual([]);
  });

  test("a parent's own failure when it also has a parent: one failure, a parent event and a child event with the same id", async () => {
    const app = await start();
    const { job: top, children } = await spec.redis.flows.add({
      name: 'top',
      queueName: 'parents',
      children: [
        {
          name: 'middle',
          queueName: 'middles',
          data: { fail: true, reason: 'middle broke' },
          opts: { ignoreDependencyOnFailure: true },
          children: [{ name: 'leaf', queueName: 'children' }],
        },
      ],
    });
    const middle = children?.[0].job.id;
    await waitUntil('the top completes', async () => (await state('parents', top.id)) === 'completed');
    await waitUntil('both events', () => app.log.runs.length === 2);
    await settle(app);
    const { parent, child } = events(app);
    expect(parent).toHaveLength(1);
    expect(parent[0]).toMatchObject({ jobId: middle, causedByChild: false, failedReason: 'middle broke' });
    expect(child).toHaveLength(1);
    expect(child[0]).toMatchObject({ jobId: middle, parentPolicy: 'ignore', parent: { queueName: 'parents', jobId: top.id } });
    expect(child[0].id).toBe(parent[0].id);
  });

  test('a parent retried with job.retry() that fails again: fires again, with a new id', async () => {
    const app = await start();
    const { job: parent } = await spec.redis.flows.add({ name: 'report', queueName: 'parents', data: { fail: true }, children: [{ name: 'section', queueName: 'children' }] });
    await waitUntil('the first failure', () => app.log.of('parent').length === 1);
    await (await spec.redis.queue('parents').getJob(parent.id as string))?.retry('failed');
    await waitUntil('the second failure', () => app.log.of('parent').length === 2);
    await settle(app);
    const [first, second] = events(app).parent;
    expect(events(app).parent).toHaveLength(2);
    expect([first, second].map((e) => [e.jobId, e.causedByChild])).toEqual([[parent.id, false], [parent.id, false]]);
    expect(second.id).not.toBe(first.id);
    expect(events(app).child).toEqual([]);
  });
});
