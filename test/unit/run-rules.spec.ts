import { describe, expect, test } from '@jest/globals';
import { nextStep, retryDelay } from '../../lib/dispatcher/run-rules.js';

describe('run rules: retries, backoff and dead letters', () => {
  test('a success is done, whatever the attempt', () => {
    expect(nextStep(1, 3, undefined, 100)).toEqual({ step: 'done' });
    expect(nextStep(3, 3, undefined, 100)).toEqual({ step: 'done' });
  });

  test('a throw with attempts left is retried as the next attempt after a doubling backoff', () => {
    expect(nextStep(1, 4, new Error('x'), 100)).toEqual({ step: 'retry', nextAttempt: 2, delayMs: 100 });
    expect(nextStep(2, 4, new Error('x'), 100)).toEqual({ step: 'retry', nextAttempt: 3, delayMs: 200 });
    expect(nextStep(3, 4, new Error('x'), 100)).toEqual({ step: 'retry', nextAttempt: 4, delayMs: 400 });
    expect([1, 2, 3, 4, 5].map((attempt) => retryDelay(attempt, 1_000))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000]);
  });

  test('the last attempt, or one past it (a take-over of a run whose count was raised), is a dead letter', () => {
    expect(nextStep(3, 3, new Error('card declined'), 100)).toEqual({ step: 'dead', lastError: 'card declined' });
    expect(nextStep(5, 3, new Error('late'), 100)).toEqual({ step: 'dead', lastError: 'late' });
  });

  test('one attempt allowed: the first throw is a dead letter, never a retry', () => {
    expect(nextStep(1, 1, new Error('once'), 100).step).toBe('dead');
  });

  test('the dead letter says what was thrown, even when it is not an Error', () => {
    const dead = (thrown: unknown) => {
      const next = nextStep(1, 1, thrown, 0);
      return next.step === 'dead' ? next.lastError : undefined;
    };
    expect(dead('plain string')).toContain('plain string');
    expect(dead({ code: 42 })).toContain('42');
    expect(dead(Object.create(null))).toEqual(expect.any(String));
    expect(dead(Object.create(null))).not.toBe('');
  });
});
