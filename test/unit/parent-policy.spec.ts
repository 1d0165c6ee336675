import { describe, expect, test } from '@jest/globals';
import { parentPolicyOf } from '../support/internals.js';

describe('parentPolicyOf', () => {
  const parent = { id: '1', queueKey: 'bull:orders' };

  test('reads the flags BullMQ stores on job.parent, in the order its script checks them', () => {
    expect(parentPolicyOf({ parent: { ...parent, fpof: true, idof: true }, opts: {} })).toBe('fail');
    expect(parentPolicyOf({ parent: { ...parent, cpof: true }, opts: {} })).toBe('continue');
    expect(parentPolicyOf({ parent: { ...parent, idof: true }, opts: {} })).toBe('ignore');
    expect(parentPolicyOf({ parent: { ...parent, rdof: true }, opts: {} })).toBe('remove');
    expect(parentPolicyOf({ parent, opts: {} })).toBe('wait');
  });

  test('falls back to the job options', () => {
    expect(parentPolicyOf({ parent, opts: { failParentOnFailure: true } })).toBe('fail');
    expect(parentPolicyOf({ parent, opts: { removeDependencyOnFailure: true } })).toBe('remove');
  });
});
