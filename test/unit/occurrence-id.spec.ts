import { describe, expect, test } from '@jest/globals';
import { occurrenceId, parseOccurrenceId } from '../support/internals.js';

describe('parseOccurrenceId', () => {
  test('gives back the parts occurrenceId joined, a job id with colons included', () => {
    expect(parseOccurrenceId(occurrenceId('orders', '42', 1700000000123))).toEqual({ queueName: 'orders', jobId: '42', finishedOn: 1700000000123 });
    expect(parseOccurrenceId(occurrenceId('orders', 'tenant:7:42', 5))).toEqual({ queueName: 'orders', jobId: 'tenant:7:42', finishedOn: 5 });
  });

  test('rejects ids without a queue, a job id or a whole finishedOn', () => {
    for (const id of ['', 'orders', 'orders:42', ':42:5', 'orders::5', 'orders:42:', 'orders:42:1.5', 'orders:42:x']) {
      expect(parseOccurrenceId(id)).toBeUndefined();
    }
  });
});
