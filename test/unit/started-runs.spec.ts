import { describe, expect, test } from '@jest/globals';
import { StartedRuns } from '../../lib/dispatcher/started-runs.js';

describe('StartedRuns', () => {
  const run = (attempt: number, occurrenceId = 'q:1:100') => ({ handlerKey: 'h', occurrenceId, attempt });

  test('an attempt started here is not started again; a later attempt is', () => {
    const started = new StartedRuns(60_000);
    expect(started.first(run(1))).toBe(true);
    expect(started.first(run(1))).toBe(false);
    expect(started.first(run(2))).toBe(true);
    expect(started.first(run(1))).toBe(false);
    expect(started.first(run(1, 'q:2:100'))).toBe(true);
  });

  test('forgets after rememberMs, and stays bounded', () => {
    const started = new StartedRuns(0);
    expect(started.first(run(1))).toBe(true);
    expect(started.first(run(1))).toBe(true);
    const many = new StartedRuns(60_000);
    for (let i = 0; i < 30_000; i++) many.first(run(1, `q:${i}:1`));
    expect(many.first(run(1, 'q:29999:1'))).toBe(false);
    expect(many.first(run(1, 'q:0:1'))).toBe(true);
  });
});
