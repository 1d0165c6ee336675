import type { JobRef } from '../interfaces/failure-events.interface.js';

/** A job's Redis key split into its parts. */
export interface ParsedJobKey extends JobRef {
  prefix: string;
}

/** One attempt of a job: a Worker's reservation is for the attempt it started. */
export interface JobAttempt {
  queueName: string;
  jobId: string;
  /** BullMQ's `attemptsStarted` (`ats`): counts every start, so each names one attempt. */
  attemptsStarted: number;
}

export function jobKey(prefix: string, queueName: string, jobId: string): string {
  return `${prefix}:${queueName}:${jobId}`;
}

/**
 * The only place a job key is taken apart. A prefix may contain ':' but queue names
 * and job ids may not, so the key splits on its last two colons.
 */
export function parseJobKey(key: string): ParsedJobKey | undefined {
  const last = key.lastIndexOf(':');
  const middle = last > 0 ? key.lastIndexOf(':', last - 1) : -1;
  if (middle <= 0 || last === key.length - 1 || last - middle < 2) {
    return undefined;
  }
  return {
    prefix: key.slice(0, middle),
    queueName: key.slice(middle + 1, last),
    jobId: key.slice(last + 1),
    key,
  };
}

/** What BullMQ keeps under a parent's job key for its children: any of them means the job had children. */
export const CHILDREN_BOOKKEEPING = ['dependencies', 'processed', 'failed', 'unsuccessful'] as const;

/** The ZSET under a parent's key of the children whose failure counted against it. */
export function failedChildrenKey(parentKey: string): string {
  return `${parentKey}:unsuccessful`;
}

const DEFERRED_FAILURE = /^child (.+) failed$/;

/** The child key inside BullMQ's deferred failure text `child <key> failed`. */
export function parseDeferredFailure(text: string | undefined): ParsedJobKey | undefined {
  const match = text ? DEFERRED_FAILURE.exec(text) : null;
  return match ? parseJobKey(match[1]) : undefined;
}
