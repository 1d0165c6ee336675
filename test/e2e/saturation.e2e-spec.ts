import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

const FLOWS = 5000;

/**
 * The app's own Workers fail flows far faster than its handlers run: the Worker source
 * passes on what it has no room for, and the events stream (BullMQ trims it) is read
 * behind. Every failure is still handled once, without waiting for a periodic sweep.
 */
describe('an app whose Workers fail flows faster than its handlers run', () => {
  const prefix = uniquePrefix('saturation');
  const spec = specResources(prefix);

  test(`${FLOWS} fail-parent flows: every failure handled once within seconds, the trimmed ones by sweeps that follow the reader`, async () => {
    const options = { concurrency: 5, sweepIntervalMs: 10 * 60 * 1000 };
    const app = await spec.start({ processors: ['parents', 'children'], workerOptions: { concurrency: 50 }, handlers: [recordingHandlers({ parent: true, child: true }, { delayMs: 1 })], options });
    const children = await spec.redis.failChildren(FLOWS, { opts: { ignoreDependencyOnFailure: false, failParentOnFailure: true } });
    await waitUntil('every failure handled', () => app.log.runs.length >= 2 * FLOWS, 60_000);
    await settle(app);
    expect(app.log.of('child').map((e) => e.jobId).sort()).toEqual([...children].sort());
    expect(app.log.of('parent')).toHaveLength(FLOWS);
    expect(app.log.runs).toHaveLength(2 * FLOWS);
    expect(app.logger.has('warn', /trimmed past/)).toBe(true);
  });
});
