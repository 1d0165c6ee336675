import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { type LiveSource, type ChildFailedEvent, type ParentFailedEvent } from '../../lib/index.js';
import { SOURCE_MODES, addCascade, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

describe.each(SOURCE_MODES)('a three-level failParentOnFailure cascade (sources: %s)', (...sources: LiveSource[]) => {
  const prefix = uniquePrefix('cascade');
  const spec = specResources(prefix);

  test('names the leaf as the root cause at every level, and fires each event once', async () => {
    const app = await spec.start({ processors: ['top', 'middle', 'leaf'], handlers: [recordingHandlers({ parent: true, child: true })], options: { sources } });
    const { top, middle, leaf } = await addCascade(spec.redis.flows, { attempts: 2 });

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
    expect(topEvent.rootCause).toMatchObject({ queueName: 'leaf', jobId: leaf, jobName: 'leaf', key: `${prefix}:leaf:${leaf}`, failedReason: 'disk full' });
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
