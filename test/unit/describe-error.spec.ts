import { describe, expect, test } from '@jest/globals';
import { describeError } from '../../lib/util/describe-error.js';

describe('describeError', () => {
  test('gives a readable text for whatever a handler throws', () => {
    expect(describeError(new Error('ledger down'))).toBe('ledger down');
    expect(describeError('plain text')).toBe('plain text');
    expect(describeError(42)).toBe('42');
    expect(describeError(undefined)).toBe('undefined');
    expect(describeError({ code: 7 })).toBe('{ code: 7 }');
    expect(describeError({ toString: () => 'custom' })).toBe('custom');
    expect(describeError([1, 2])).toBe('1,2');
    const bare = Object.assign(Object.create(null) as object, { code: 'E_BARE' });
    expect(describeError(bare)).toBe("[Object: null prototype] { code: 'E_BARE' }");
  });
});
