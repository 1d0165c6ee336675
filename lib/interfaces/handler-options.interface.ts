/** One queue name or several. */
export type QueueNames = string | string[];

export interface OnParentFailedOptions {
  /** The parent's queue(s); omitted: every watched queue. */
  queueName?: QueueNames;
  /** The parent's job name(s); omitted: any. */
  jobName?: string | string[];
  /** true: only failures a child caused; false: only the parent's own; omitted: both. */
  causedByChild?: boolean;
  /**
   * Run once no child of the failed parent is pending any more, with the final `children`:
   * siblings still running when the parent failed are seen as they end. The wait is bounded
   * by `timeoutMs` (default: the module's `settledTimeoutMs`), after which the handler runs
   * with `children.pending` not empty. A replay of its dead letter runs at once, with the
   * children as they are then.
   */
  settled?: boolean | { timeoutMs: number };
}

export interface OnChildFailedOptions {
  /** The failed child's queue(s); omitted: every watched queue. */
  queueName?: QueueNames;
  /** The failed child's job name(s); omitted: any. */
  jobName?: string | string[];
  /** The parent's queue(s); omitted: any. */
  parentQueueName?: QueueNames;
}
