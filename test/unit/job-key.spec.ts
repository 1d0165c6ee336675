import { describe, expect, test } from '@jest/globals';
import { jobKey, parseDeferredFailure, parseJobKey } from '../support/internals.js';

describe('parseJobKey', () => {
  test('splits on the last two colons, so a prefix may contain colons', () => {
    expect(parseJobKey('bull:orders:42')).toEqual({ prefix: 'bull', queueName: 'orders', jobId: '42', key: 'bull:orders:42' });
    expect(parseJobKey('{app}:tenant-1:orders:abc-1')).toEqual({
      prefix: '{app}:tenant-1',
      queueName: 'orders',
      jobId: 'abc-1',
      key: '{app}:tenant-1:orders:abc-1',
    });
  });

  test('rejects keys without three parts', () => {
    for (const key of ['', 'orders', 'orders:42', ':orders:42', 'bull::42', 'bull:orders:']) {
      expect(parseJobKey(key)).toBeUndefined();
    }
  });

  test('jobKey and parseJobKey agree', () => {
    const key = jobKey('my:prefix', 'payments', 'x7');
    expect(parseJobKey(key)).toMatchObject({ prefix: 'my:prefix', queueName: 'payments', jobId: 'x7' });
  });
});

describe('parseDeferredFailure', () => {
  test("reads the child key out of BullMQ's text", () => {
    expect(parseDeferredFailure('child bull:payments:7 failed')).toMatchObject({ queueName: 'payments', jobId: '7' });
  });

  test('ignores any other text', () => {
    expect(parseDeferredFailure(undefined)).toBeUndefined();
    expect(parseDeferredFailure('job stalled more than allowable limit')).toBeUndefined();
    expect(parseDeferredFailure('child failed')).toBeUndefined();
  });
});
