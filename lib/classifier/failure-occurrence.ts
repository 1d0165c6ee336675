import type { Job } from 'bullmq';
import { parseOccurrenceId } from '../claims/formats.js';
import type { JobAttempt } from '../redis/redis-keys.js';
import type { ChildFailedEvent, FailureSource, ParentFailedEvent } from '../interfaces/failure-events.interface.js';

/**
 * One terminal failure of one job, classified. A job that is both a child and a parent
 * (the middle of a cascade) carries both events.
 */
export interface FailureOccurrence {
  /** See occurrenceId() in claims/formats.ts: every source and replica derives the same one. */
  id: string;
  queueName: string;
  jobId: string;
  finishedOn: number;
  /** The attempt that failed (BullMQ's `attemptsStarted`), when the job was there to tell. */
  attemptsStarted?: number;
  source: FailureSource;
  job?: Job;
  parentFailed?: ParentFailedEvent;
  childFailed?: ChildFailedEvent;
}

/** The occurrence without live objects: stored with its claims so another replica can run it. */
export interface OccurrenceSnapshot {
  parentFailed?: Omit<ParentFailedEvent, 'job'>;
  childFailed?: Omit<ChildFailedEvent, 'job'>;
}

/** The job attempt whose failure this is, when known (a Worker may have reserved it). */
export function failedAttempt(occurrence: FailureOccurrence): JobAttempt | undefined {
  const { queueName, jobId, attemptsStarted } = occurrence;
  return attemptsStarted ? { queueName, jobId, attemptsStarted } : undefined;
}

export function toSnapshot(occurrence: FailureOccurrence): string {
  const strip = <T extends { job?: Job }>(event: T | undefined): Omit<T, 'job'> | undefined => {
    if (!event) return undefined;
    const { job: _job, ...rest } = event;
    return rest;
  };
  const snapshot: OccurrenceSnapshot = {
    parentFailed: strip(occurrence.parentFailed),
    childFailed: strip(occurrence.childFailed),
  };
  return JSON.stringify(snapshot);
}

/** Rebuilds an occurrence from its snapshot (undefined when it does not parse); `job` is the job as it is now, if it still exists. */
export function fromSnapshot(id: string, json: string, loadJob: (queueName: string, jobId: string) => Promise<Job | undefined>): Promise<FailureOccurrence | undefined> {
  let snapshot: OccurrenceSnapshot;
  try {
    snapshot = JSON.parse(json) as OccurrenceSnapshot;
  } catch {
    return Promise.resolve(undefined);
  }
  const first = snapshot.parentFailed ?? snapshot.childFailed;
  if (!first) return Promise.resolve(undefined);
  return loadJob(first.queueName, first.jobId).then((job) => ({
    id,
    queueName: first.queueName,
    jobId: first.jobId,
    finishedOn: parseOccurrenceId(id)?.finishedOn ?? 0,
    source: first.source,
    job,
    parentFailed: snapshot.parentFailed && { ...snapshot.parentFailed, job },
    childFailed: snapshot.childFailed && { ...snapshot.childFailed, job },
  }));
}
