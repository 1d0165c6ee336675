import type { Job } from 'bullmq';

/** Which part of the module noticed the failure first. */
export type FailureSource = 'worker' | 'stream' | 'sweep';

/** What a child's options told BullMQ to do with its parent when it failed. */
export type ParentPolicy = 'fail' | 'continue' | 'ignore' | 'remove' | 'wait';

/** A job named by queue and id; `key` is the job's Redis key, `${prefix}:${queueName}:${jobId}`. */
export interface JobRef {
  queueName: string;
  jobId: string;
  key: string;
}

/** A child of a failed parent; `jobName` is undefined when the child job no longer exists. */
export interface ChildRef extends JobRef {
  jobName?: string;
}

export interface CompletedChild extends ChildRef {
  /** What its processor returned, from the parent's record of it (it outlives `removeOnComplete`). */
  returnValue: unknown;
}

export interface FailedChild extends ChildRef {
  failedReason: string;
}

/** The direct children of a failed parent, by outcome. */
export interface FlowChildren {
  /** Finished successfully. */
  completed: CompletedChild[];
  /** Failed with `failParentOnFailure` or `continueParentOnFailure`: their failure failed or continued the parent. */
  failed: FailedChild[];
  /**
   * Failed with `ignoreDependencyOnFailure`. A child removed under `removeDependencyOnFailure`
   * is kept by BullMQ in no list, so it is in none here.
   */
  ignored: FailedChild[];
  /** Not finished yet: waiting, delayed, active, or waiting for children of its own. */
  pending: ChildRef[];
  /** True when a group held more than 1000 children: each list holds the first 1000. */
  truncated: boolean;
}

/** The deepest failed descendant on the path that failed a parent. */
export interface RootCause extends JobRef {
  jobName?: string;
  failedReason: string;
  stacktrace?: string[];
}

interface FailureEventBase {
  /**
   * This failure occurrence: the same from every source and replica, new when the job
   * fails again after a retry. Use it as the idempotency key of a handler's side effects.
   */
  id: string;
  queueName: string;
  jobId: string;
  jobName?: string;
  /**
   * The failed job: as the Worker of this app that failed it had it (so a job removed by
   * `removeOnFail` still has it), else as it is stored now; undefined when it is gone, or
   * its stored data or options are not valid JSON.
   */
  job?: Job;
  failedReason: string;
  source: FailureSource;
}

/** A parent (a job that has or had children) failed terminally. */
export interface ParentFailedEvent extends FailureEventBase {
  kind: 'parent-failed';
  /** True when a `failParentOnFailure` child failed it; false when its own processor did. */
  causedByChild: boolean;
  /** The immediate child whose failure failed this job. */
  failedChild?: JobRef;
  /**
   * The deepest failed descendant on that path (equal to `failedChild` for one level): the
   * leaf as this app saw it fail, else the last job on the path that still exists.
   */
  rootCause?: RootCause;
  /**
   * Its direct children when the event was built; for a `settled` handler, once no child
   * is pending any more (or its wait ran out), and at the replay of its dead letter.
   */
  children: FlowChildren;
}

/** A job that has a parent failed terminally (after all its attempts). */
export interface ChildFailedEvent extends FailureEventBase {
  kind: 'child-failed';
  stacktrace?: string[];
  attemptsMade: number;
  parent: JobRef;
  /** From the child's options; 'wait' means none: the parent now waits forever. */
  parentPolicy: ParentPolicy;
}

export type FlowFailureEvent = ParentFailedEvent | ChildFailedEvent;
export type FlowFailureEventKind = FlowFailureEvent['kind'];
