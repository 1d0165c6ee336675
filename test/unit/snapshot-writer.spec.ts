import { describe, expect, test } from '@jest/globals';
import type { UnwantedClaims } from '../../lib/claims/claim.types.js';
import type { FailureOccurrence } from '../../lib/classifier/failure-occurrence.js';
import { SnapshotWriter } from '../../lib/dispatcher/snapshot-writer.js';

/** Long enough for the writer's two ticks (200 ms each) to pass. */
const TWO_TICKS_MS = 500;

describe('SnapshotWriter', () => {
  const occurrence = (jobId: string): FailureOccurrence => ({ id: `q:${jobId}:100`, queueName: 'q', jobId, finishedOn: 100, source: 'stream' });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  function writer() {
    const written: UnwantedClaims[] = [];
    const snapshots = new SnapshotWriter({ releaseUnwanted: async (requests) => void written.push(...requests) }, 60_000);
    return { snapshots, written };
  }

  test('an occurrence whose runs are all done and that has no unwanted claim is dropped at once, and nothing is written', async () => {
    const { snapshots, written } = writer();
    snapshots.add(occurrence('1'), 2, []);
    snapshots.runDone('q:1:100');
    expect(snapshots.idle).toBe(false);
    snapshots.runDone('q:1:100');
    expect(snapshots.idle).toBe(true);
    await sleep(TWO_TICKS_MS);
    expect(written).toEqual([]);
  });

  test('with a run still open its snapshot is written; with unwanted claims only they are released, without a snapshot', async () => {
    const { snapshots, written } = writer();
    snapshots.add(occurrence('1'), 1, []);
    snapshots.add(occurrence('2'), 1, ['other-handler']);
    snapshots.runDone('q:2:100');
    await sleep(TWO_TICKS_MS);
    expect(written).toEqual([
      { occurrenceId: 'q:1:100', snapshot: expect.any(String), handlerKeys: [] },
      { occurrenceId: 'q:2:100', snapshot: '', handlerKeys: ['other-handler'] },
    ]);
    await snapshots.flush();
    expect(snapshots.idle).toBe(true);
  });
});
