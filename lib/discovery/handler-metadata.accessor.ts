import { Injectable } from '@nestjs/common';
import { FLOW_FAILURE_HANDLER_METADATA } from '../flow-failure.constants.js';
import type { RawHandlerMetadata } from '../decorators/handler-metadata.js';
import { FlowFailureConfigError } from '../errors/flow-failure-config.error.js';
import type { HandlerFilter } from './handler-filter.js';
import { describeValue } from '../util/describe-value.js';

const ALLOWED_OPTIONS: Record<RawHandlerMetadata['kind'], readonly string[]> = {
  'parent-failed': ['queueName', 'jobName', 'causedByChild', 'settled'],
  'child-failed': ['queueName', 'jobName', 'parentQueueName'],
};

/** Reads what the decorators recorded on a method and turns it into validated filters. */
@Injectable()
export class HandlerMetadataAccessor {
  getRaw(method: object): RawHandlerMetadata[] {
    return (Reflect.getMetadata(FLOW_FAILURE_HANDLER_METADATA, method) as RawHandlerMetadata[] | undefined) ?? [];
  }

  /** @throws FlowFailureConfigError naming `where` (Class.method) */
  toFilter(raw: RawHandlerMetadata, where: string): HandlerFilter {
    const fail = (problem: string): never => {
      throw new FlowFailureConfigError(`${raw.decorator} on ${where}: ${problem}`);
    };
    const { argument } = raw;
    if (argument === undefined) {
      return {};
    }
    if (typeof argument === 'string' || Array.isArray(argument)) {
      return { queueNames: names(argument, 'queue name', fail) };
    }
    if (typeof argument !== 'object' || argument === null) {
      return fail(`expected a queue name, an array of queue names or an options object, got ${describeValue(argument)}`);
    }
    const options = argument as Record<string, unknown>;
    const allowed = ALLOWED_OPTIONS[raw.kind];
    const unknown = Object.keys(options).filter((key) => !allowed.includes(key));
    if (unknown.length > 0) {
      fail(`unknown option ${unknown.map((k) => `"${k}"`).join(', ')} (allowed: ${allowed.join(', ')})`);
    }
    const filter: { -readonly [K in keyof HandlerFilter]: HandlerFilter[K] } = {};
    if (options.queueName !== undefined) filter.queueNames = names(options.queueName, 'queue name', fail);
    if (options.jobName !== undefined) filter.jobNames = names(options.jobName, 'job name', fail);
    if (options.parentQueueName !== undefined) {
      filter.parentQueueNames = names(options.parentQueueName, 'parent queue name', fail);
    }
    if (options.causedByChild !== undefined) {
      if (typeof options.causedByChild !== 'boolean') {
        fail(`causedByChild must be a boolean, got ${describeValue(options.causedByChild)}`);
      }
      filter.causedByChild = options.causedByChild as boolean;
    }
    if (options.settled !== undefined && options.settled !== false) filter.settled = settledOption(options.settled, fail);
    return filter;
  }
}

function names(value: unknown, what: string, fail: (problem: string) => never): ReadonlySet<string> {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) {
    fail(`the list of ${what}s is empty`);
  }
  for (const name of list) {
    if (typeof name !== 'string' || name.trim() === '') {
      fail(`${what} must be a non-empty string, got ${describeValue(name)}`);
    }
    if (what !== 'job name' && name.includes(':')) {
      fail(`${what} "${name}" contains ':', which BullMQ does not allow in queue names`);
    }
  }
  return new Set(list as string[]);
}

function settledOption(value: unknown, fail: (problem: string) => never): { timeoutMs?: number } {
  if (value === true) return {};
  const timeoutMs = typeof value === 'object' && value !== null ? (value as { timeoutMs?: unknown }).timeoutMs : undefined;
  const keys = typeof value === 'object' && value !== null ? Object.keys(value) : [];
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || keys.some((key) => key !== 'timeoutMs')) {
    return fail(`settled must be true or { timeoutMs: <whole number of ms, at least 1> }, got ${describeValue(value)}`);
  }
  return { timeoutMs };
}

