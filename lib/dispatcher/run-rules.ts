import { describeError } from '../util/describe-error.js';

/** What follows a handler's attempt. */
export type NextStep =
  | { step: 'done' }
  | { step: 'retry'; nextAttempt: number; delayMs: number }
  | { step: 'dead'; lastError: string };

/** The wait before attempt `attempt + 1`: the backoff, doubled for each attempt after the first. */
export function retryDelay(attempt: number, backoffMs: number): number {
  return backoffMs * 2 ** (attempt - 1);
}

/**
 * The rule of retries and dead letters: a success is done; a throw is tried again after a
 * doubling backoff while attempts remain, and is a dead letter after the last one.
 * `failure` undefined means the attempt succeeded.
 */
export function nextStep(attempt: number, maxAttempt: number, failure: unknown, backoffMs: number): NextStep {
  if (failure === undefined) return { step: 'done' };
  if (attempt >= maxAttempt) return { step: 'dead', lastError: describeError(failure) };
  return { step: 'retry', nextAttempt: attempt + 1, delayMs: retryDelay(attempt, backoffMs) };
}
