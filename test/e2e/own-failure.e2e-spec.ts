import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { OnChildFailed, OnParentFailed, type ChildFailedEvent, type LiveSource, type ParentFailedEvent } from '../../lib/index.js';
import { EventLog, SOURCE_MODES, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

@Injectable()
class Handlers {
  constructor(private readonly log: EventLog) {}

  @OnParentFailed()
  parent(event: ParentFailedEvent) {
    this.log.record('parent', event);
  }

  @OnParentFailed({ causedByChild: true })
  onlyCascades(event: ParentFailedEvent) {
    this.log.record('only-cascades', event);
  }

  @OnChildFailed()
  child(event: ChildFailedEvent) {
    this.log.record('child', event);
  }
}

describe.each(SOURCE_MODES)('failures that are not cascades (sources: %s)', (...sources: LiveSource[]) => {
  const prefix = uniquePrefix('own');
  const spec = specResources(prefix);
  const start = () => spec.start({ processors: ['reports', 'sections', 'plain'], handlers: [Handlers], options: { sources } });

  test('a parent failing in its own processor: causedByChild false, no failedChild or rootCause', async () => {
    const app = await start();
    const flow = await spec.redis.flows.add({
      name: 'report',
      queueName: 'reports',
      data: { fail: true, reason: 'template missing' },
      opts: { attempts: 2 },
      children: [{ name: 'section', queueName: 'sections', data: {} }],
    });
    const parentId = flow.job.id as string;
    await waitUntil('the parent event', () => app.log.of('parent').length === 1);
    await settle(app);

    expect(app.log.runs.map((r) => r.handler)).toEqual(['parent']);
    const [event] = app.log.of('parent') as ParentFailedEvent[];
    expect(event).toMatchObject({ jobId: parentId, causedByChild: false, failedReason: 'template missing' });
    expect(event.failedChild).toBeUndefined();
    expect(event.rootCause).toBeUndefined();
    expect(event.job?.attemptsMade).toBe(2);
  });

  test("a parent's own error worded like BullMQ's cascade reason is still its own failure", async () => {
    const app = await start();
    // The stream entry carries this reason: the child it names is checked, not trusted.
    const reason = `child ${prefix}:sections:not-a-child failed`;
    const flow = await spec.redis.flows.add({
      name: 'report',
      queueName: 'reports',
      data: { fail: true, reason },
      children: [{ name: 'section', queueName: 'sections', data: {} }],
    });
    await waitUntil('the parent event', () => app.log.of('parent').length === 1);
    await settle(app);

    expect(app.log.runs.map((r) => r.handler)).toEqual(['parent']);
    const [event] = app.log.of('parent') as ParentFailedEvent[];
    expect(event).toMatchObject({ jobId: flow.job.id, causedByChild: false, failedReason: reason });
    expect(event.failedChild).toBeUndefined();
  });

  test('plain jobs and attempts that will be retried fire nothing', async () => {
    const app = await start();
    const plain = await spec.redis.queue('plain').add('lonely', { fail: true }, { attempts: 2 });
    // A child failing on its first attempt and succeeding on the second: not a terminal failure.
    const flow = await spec.redis.flows.add({
      name: 'report',
      queueName: 'reports',
      children: [{ name: 'flaky', queueName: 'sections', data: { fail: 1 }, opts: { attempts: 2, failParentOnFailure: true } }],
    });
    await waitUntil('the plain job fails', async () => (await plain.getState()) === 'failed');
    await waitUntil('the flow completes', async () => (await flow.job.getState()) === 'completed');
    await settle(app);
    expect(app.log.runs).toEqual([]);
  });
});
