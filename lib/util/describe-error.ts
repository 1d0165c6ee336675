import { inspect } from 'node:util';

/**
 * A readable message for any thrown value: an Error's message, a string as it is, a value
 * with its own `toString` as that prints it, and anything else (a plain object, one without
 * a prototype) as Node prints it, so that `lastError` never reads `[object Object]`.
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  if (typeof error === 'object' && error !== null && !hasOwnToString(error)) {
    return inspect(error, { depth: 2, breakLength: Infinity });
  }
  return String(error);
}

function hasOwnToString(value: object): boolean {
  const toString = (value as { toString?: unknown }).toString;
  return typeof toString === 'function' && toString !== Object.prototype.toString;
}
