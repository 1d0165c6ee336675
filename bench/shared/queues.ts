/**
 * The two queues every scenario uses: a fail-parent flow is a parent in `parents` with one
 * child in `children` whose failure fails the parent. Each flow so yields two terminal
 * failures: the child's (an @OnChildFailed event) and the parent's (an @OnParentFailed event).
 */
export const PARENTS_QUEUE = 'parents';
export const CHILDREN_QUEUE = 'children';
export const WATCHED_QUEUES = [PARENTS_QUEUE, CHILDREN_QUEUE] as const;
export type WatchedQueue = (typeof WATCHED_QUEUES)[number];

/** The module's default consumer group: the lag poller reads its position. */
export const MODULE_CONSUMER_GROUP = 'flow-failure';

/** What a bench job does, read by the processors from its data. */
export interface BenchJobData {
  fail?: boolean;
}

/**
 * Job ids say which phase a job belongs to (`w-12-p`: warm-up flow 12, its parent), so a
 * listener that only gets a job id (QueueEvents) can still be sorted into phases.
 */
export function flowJobIds(phase: string, index: number): { parentId: string; childId: string } {
  return { parentId: `${phase}-${index}-p`, childId: `${phase}-${index}-c` };
}

export function phaseOf(jobId: string): string {
  return jobId.slice(0, jobId.indexOf('-'));
}
