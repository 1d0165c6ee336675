import type { WorkerOptions } from 'bullmq';
import type { FlowFailureModuleOptions } from 'nestjs-flow-failure';

/** Short leases and intervals so that a two-minute run sees many recoveries. */
export const CHAOS_MODULE_OPTIONS: FlowFailureModuleOptions = {
  leaseMs: 3000,
  sweepIntervalMs: 2000,
  handlerBackoffMs: 100,
};

/** A killed Worker's jobs come back within seconds, and are never failed for stalling. */
export const CHAOS_WORKER_OPTIONS: Partial<WorkerOptions> = {
  concurrency: 20,
  lockDuration: 4000,
  stalledInterval: 2000,
  maxStalledCount: 1000,
};

export function runsKey(prefix: string): string {
  return `${prefix}:chaos:runs`;
}
