import { describe, expect, test } from '@jest/globals';
import { RecentFailures } from '../support/internals.js';

const KEY = 'bull:orders:1';
const FINISHED_ON = 1_795_700_000_000;

describe('RecentFailures', () => {
  test("a stream entry waits for this process's Worker report of the same failure, then knows it is recorded", async () => {
    const recent = new RecentFailures();
    let finish!: (recorded: boolean) => void;
    const recorded = new Promise<boolean>((resolve) => (finish = resolve));
    recent.reporting(KEY, FINISHED_ON, recorded);

    let answer: boolean | undefined;
    const asked = recent.recordedHere(KEY, FINISHED_ON + 3, 100).then((recorded) => (answer = recorded));
    await Promise.resolve();
    expect(answer).toBeUndefined(); // still waiting for the report

    finish(true);
    await asked;
    expect(answer).toBe(true);
  });

  test('a report that failed to be recorded leaves the failure to the stream', async () => {
    const recent = new RecentFailures();
    recent.reporting(KEY, FINISHED_ON, Promise.reject(new Error('Redis went away')));
    await expect(recent.recordedHere(KEY, FINISHED_ON, 0)).resolves.toBe(false);
  });

  test('another failure of the same job (a retry failing again) is not taken for the recorded one', async () => {
    const recent = new RecentFailures();
    recent.reporting(KEY, FINISHED_ON, Promise.resolve(true));
    await expect(recent.recordedHere(KEY, FINISHED_ON + 5_000, 100)).resolves.toBe(false);
    await expect(recent.recordedHere('bull:orders:2', FINISHED_ON, 100)).resolves.toBe(false);
  });

  test('remembering the root cause keeps what is known of the report', async () => {
    const recent = new RecentFailures();
    recent.reporting(KEY, FINISHED_ON, Promise.resolve(true));
    const cause = { queueName: 'orders', jobId: '1', key: KEY, failedReason: 'boom' };
    recent.remember(KEY, FINISHED_ON, cause);
    expect(recent.rootCauseOf(KEY)).toEqual(cause);
    await expect(recent.recordedHere(KEY, FINISHED_ON, 0)).resolves.toBe(true);
  });

  test('stays bounded: past 5,000 failures the least recently seen are forgotten first', () => {
    const recent = new RecentFailures();
    const key = (i: number) => `bull:orders:${i}`;
    const cause = (i: number) => ({ queueName: 'orders', jobId: String(i), key: key(i), failedReason: 'boom' });
    for (let i = 0; i < 5000; i++) recent.remember(key(i), FINISHED_ON + i, cause(i));
    recent.remember(key(0), FINISHED_ON, cause(0)); // seen again: now the most recent
    for (let i = 5000; i < 5200; i++) recent.remember(key(i), FINISHED_ON + i, cause(i));
    expect(recent.rootCauseOf(key(1))).toBeUndefined();
    expect(recent.rootCauseOf(key(0))).toEqual(cause(0));
    expect(recent.rootCauseOf(key(5199))).toEqual(cause(5199));
  });
});
