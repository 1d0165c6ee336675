import { describe, expect, test } from '@jest/globals';
import { parseStreamEntry, streamReplyPairs } from '../support/internals.js';

describe('parseStreamEntry', () => {
  test('a failed event becomes a signal', () => {
    expect(parseStreamEntry('orders', ['1795700000123-0', ['event', 'failed', 'jobId', '42', 'failedReason', 'x', 'prev', 'active']])).toEqual({
      kind: 'failure',
      signal: { source: 'stream', queueName: 'orders', jobId: '42', reportedAt: 1795700000123, failedReason: 'x' },
    });
  });

  test('other events, and entries trimmed while pending, are not failures', () => {
    expect(parseStreamEntry('orders', ['1-0', ['event', 'completed', 'jobId', '42']])).toEqual({ kind: 'other' });
    expect(parseStreamEntry('orders', ['1-0', null])).toEqual({ kind: 'other' });
  });

  test('malformed entries say what is wrong', () => {
    expect(parseStreamEntry('orders', ['1-0', ['event', 'failed']])).toMatchObject({ kind: 'malformed', problem: expect.stringContaining('no jobId') });
    expect(parseStreamEntry('orders', ['1-0', ['event']])).toMatchObject({ kind: 'malformed' });
    expect(parseStreamEntry('orders', 'garbage')).toMatchObject({ kind: 'malformed' });
  });
});

describe('streamReplyPairs', () => {
  const entries = [['1-0', ['event', 'failed', 'jobId', '1']]];

  test('RESP2 replies are lists of pairs; RESP3 maps arrive flattened', () => {
    expect(streamReplyPairs([['s1', entries], ['s2', entries]])).toEqual([['s1', entries], ['s2', entries]]);
    expect(streamReplyPairs(['s1', entries, 's2', entries])).toEqual([['s1', entries], ['s2', entries]]);
    expect(streamReplyPairs(null)).toEqual([]);
  });
});
