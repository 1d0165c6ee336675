import { describe, expect, test } from '@jest/globals';
import { RedisKeys, clusterSlotMismatch, hashTagOf, jobKey } from '../../lib/redis/redis-keys.js';

const keys = new RedisKeys('bull', 'flow-failure', ['orders', 'payments', 'imports']);

describe('RedisKeys.parseJobKey', () => {
  test('a job id may contain colons, even two in a row', () => {
    expect(keys.parseJobKey('bull:orders:order:42:main')).toEqual({ prefix: 'bull', queueName: 'orders', jobId: 'order:42:main', key: 'bull:orders:order:42:main' });
    expect(keys.parseJobKey('bull:imports:imp::42')).toMatchObject({ queueName: 'imports', jobId: 'imp::42' });
    expect(keys.parseJobKey('bull:payments::')).toMatchObject({ queueName: 'payments', jobId: ':' });
  });

  test('under another prefix (which may contain colons), a watched queue tells where to split', () => {
    expect(keys.parseJobKey('{app}:tenant-1:orders:order:7')).toEqual({
      prefix: '{app}:tenant-1',
      queueName: 'orders',
      jobId: 'order:7',
      key: '{app}:tenant-1:orders:order:7',
    });
  });

  test('an unwatched queue under this prefix splits after the queue; under another, on the last two colons', () => {
    expect(keys.parseJobKey('bull:mail:m:1')).toMatchObject({ prefix: 'bull', queueName: 'mail', jobId: 'm:1' });
    expect(keys.parseJobKey('other:pfx:mail:m1')).toMatchObject({ prefix: 'other:pfx', queueName: 'mail', jobId: 'm1' });
  });

  test('rejects keys without a queue and a job id', () => {
    for (const key of ['', 'orders', 'orders:42', ':orders:42', 'bull::42', 'bull:orders:']) {
      expect(keys.parseJobKey(key)).toBeUndefined();
    }
  });

  test('jobKey and parseJobKey agree', () => {
    const other = new RedisKeys('my:prefix', 'g', ['payments']);
    expect(other.parseJobKey(jobKey('my:prefix', 'payments', 'x:7'))).toMatchObject({ prefix: 'my:prefix', queueName: 'payments', jobId: 'x:7' });
  });
});

describe('RedisKeys.parentOf', () => {
  test("reads BullMQ's parent reference exactly, whatever the id holds", () => {
    expect(keys.parentOf({ parent: { id: 'order:42:main', queueKey: 'bull:orders' } })).toEqual({
      prefix: 'bull',
      queueName: 'orders',
      jobId: 'order:42:main',
      key: 'bull:orders:order:42:main',
    });
    expect(keys.parentOf({ parentKey: 'bull:orders:o::1' })).toMatchObject({ queueName: 'orders', jobId: 'o::1' });
    expect(keys.parentOf({})).toBeUndefined();
  });
});

describe('RedisKeys.parseDeferredFailure', () => {
  test("reads the child key out of BullMQ's text", () => {
    expect(keys.parseDeferredFailure('child bull:payments:7 failed')).toMatchObject({ queueName: 'payments', jobId: '7' });
    expect(keys.parseDeferredFailure('child bull:payments:pay:42:card failed')).toMatchObject({ queueName: 'payments', jobId: 'pay:42:card' });
  });

  test('ignores any other text', () => {
    expect(keys.parseDeferredFailure(undefined)).toBeUndefined();
    expect(keys.parseDeferredFailure('job stalled more than allowable limit')).toBeUndefined();
    expect(keys.parseDeferredFailure('child failed')).toBeUndefined();
  });
});

describe('the Redis Cluster layout', () => {
  test('hash tags as Redis Cluster reads them: the first {…} that is not empty', () => {
    expect(hashTagOf('{bull}:orders:1')).toBe('bull');
    expect(hashTagOf('bull:{orders}:1')).toBe('orders');
    expect(hashTagOf('{}bull:{orders}:1')).toBeUndefined();
    expect(hashTagOf('bull:orders:1')).toBeUndefined();
  });

  test('one hash-tagged prefix: every queue shares the slot of the module keys', () => {
    expect(clusterSlotMismatch(new RedisKeys('{bull}', 'g', ['orders', '{payments}']), ['orders', '{payments}'])).toBeUndefined();
    expect(clusterSlotMismatch(new RedisKeys('app:{bull}', 'g', ['orders']), ['orders'])).toBeUndefined();
  });

  test('no tag in the prefix, or one per queue: the module keys land elsewhere', () => {
    expect(clusterSlotMismatch(new RedisKeys('bull', 'g', ['orders']), ['orders'])).toEqual({ ownTag: undefined, queues: [] });
    expect(clusterSlotMismatch(new RedisKeys('bull', 'g', ['{orders}', 'mail']), ['{orders}', 'mail'])).toEqual({ ownTag: undefined, queues: ['{orders}'] });
    // A '{' the prefix leaves open is no tag: nothing after it closes it.
    expect(clusterSlotMismatch(new RedisKeys('{bull', 'g', ['orders']), ['orders'])).toEqual({ ownTag: undefined, queues: [] });
  });
});
