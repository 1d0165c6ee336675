import { describe, expect, test } from '@jest/globals';
import type { PlacedFlow } from '../chaos/chaos-flows.js';
import { type Kill, type RecordedRun, judge } from '../chaos/tally.js';

/**
 * The chaos runs' verdict: a handler run repeated is excused only when the process of the
 * earlier run was killed inside that run (after it started, before its done mark).
 */
describe('the chaos tally', () => {
  // An ignored leaf: one child run expected, of c-leaf:7.
  const flows: PlacedFlow[] = [{ kind: 'ignore', top: '5', mid: '6', leaf: '7' }];
  const occurrenceId = 'c-leaf:7:1000';
  const run = (pid: number, startedAt: number, more: Partial<RecordedRun> = {}): RecordedRun => ({
    handler: 'child',
    job: 'c-leaf:7',
    occurrenceId,
    pid,
    source: 'worker',
    startedAt,
    ...more,
  });
  /** Process 1 killed at 500 ms, with these runs started and not marked done. */
  const killAt500 = (...open: string[]): Kill[] => [{ pid: 1, at: 500, open: new Set(open) }];

  test('one run: nothing lost, nothing repeated', () => {
    expect(judge(flows, [run(1, 100)], [])).toMatchObject({ lost: [], duplicated: [], rerunsInsideKilledRuns: 0, unexpected: [] });
  });

  test('a run whose process was killed after it started and before its done mark: a re-run, not a duplicate', () => {
    const result = judge(flows, [run(1, 100), run(2, 3600)], killAt500(`child|${occurrenceId}`));
    expect(result).toMatchObject({ duplicated: [], rerunsInsideKilledRuns: 1, openAtKills: 1 });
  });

  test('the same with the failure only reserved by the killed process (its claim not written yet)', () => {
    const result = judge(flows, [run(1, 100), run(2, 3600)], killAt500('reserved|c-leaf:7'));
    expect(result).toMatchObject({ duplicated: [], rerunsInsideKilledRuns: 1 });
  });

  test('a process killed after the done mark of its run does not excuse a second run', () => {
    // Killed later, but the run was marked done: nothing of it was open at the kill.
    const result = judge(flows, [run(1, 100), run(2, 3600)], killAt500(`child|c-leaf:8:1000`));
    expect(result).toMatchObject({ duplicated: ['child|c-leaf:7'], rerunsInsideKilledRuns: 0 });
  });

  test('a process killed before the run started does not excuse it', () => {
    const result = judge(flows, [run(1, 900), run(2, 3600)], killAt500(`child|${occurrenceId}`));
    expect(result.duplicated).toEqual(['child|c-leaf:7']);
  });

  test('a repeat by a process never killed is a duplicate', () => {
    expect(judge(flows, [run(1, 100), run(2, 3600)], []).duplicated).toEqual(['child|c-leaf:7']);
    expect(judge(flows, [run(1, 100), run(2, 3600)], [{ pid: 2, at: 4000, open: new Set([`child|${occurrenceId}`]) }]).duplicated).toEqual([
      'child|c-leaf:7',
    ]);
  });

  test('two occurrence ids for one failed job is a duplicate, whatever was killed', () => {
    const result = judge(flows, [run(1, 100), run(2, 3600, { occurrenceId: 'c-leaf:7:2000' })], killAt500(`child|${occurrenceId}`));
    expect(result.duplicated).toEqual(['child|c-leaf:7']);
  });

  test('a run no flow explains is unexpected, and a missing one lost', () => {
    const result = judge(flows, [run(1, 100, { handler: 'parent' })], []);
    expect(result).toMatchObject({ lost: ['child|c-leaf:7'], unexpected: ['parent|c-leaf:7'] });
  });
});
