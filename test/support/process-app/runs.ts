/** One handler run of a process app, as it started or ended. */
export interface ProcessRun {
  /** 'parent', 'child', or the name a test gave its handler. */
  handler: string;
  jobId: string;
  occurrenceId: string;
  pid: number;
  phase: 'start' | 'end';
  at: number;
}

/** The Redis list the process apps of a prefix record their runs in. */
export function runsKey(prefix: string): string {
  return `${prefix}:test:process-runs`;
}
