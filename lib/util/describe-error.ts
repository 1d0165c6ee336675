import { inspect } from 'node:util';

/**
 * A readable message for any thrown value: an Error's message, a string as it is, and
 * anything else as Node prints it (a value without a prototype cannot be made a string).
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  try {
    return String(error);
  } catch {
    return inspect(error, { depth: 2, breakLength: Infinity });
  }
}
