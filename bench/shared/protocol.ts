import type { VariantName } from './variants.js';

/**
 * Where the watched queues' Workers run. 'workers': in the app under test, beside the
 * listener (a service that processes its own queues). 'service': elsewhere (a second app
 * process, or the bench's stand-in Workers): the app only watches, as a compensation
 * service does.
 */
export type Layout = 'workers' | 'service';
export const LAYOUTS: readonly Layout[] = ['workers', 'service'];

/** What the bench process tells an app process to be. */
export interface AppSpec {
  variant: VariantName;
  redisUrl: string;
  prefix: string;
  /** 'samples' keeps every handler start (latency, catch-up); 'count' keeps counters only, so memory stays flat. */
  record: 'samples' | 'count';
  layout: Layout;
  workerConcurrency: number;
  /** `streams.events.maxLen` the app's queues declare; undefined: BullMQ's default (10,000). */
  eventsMaxLen?: number;
  /** Time the module's stages (classify, claim, ...) by wrapping its classes: adds overhead, for profiling only. */
  trace: boolean;
}

/** One handler start: `at` and `finishedOn` are wall-clock ms of the app process. */
export interface HandlerSample {
  queueName: string;
  jobId: string;
  /** Wall-clock ms with sub-ms precision (calibrated performance.now()). */
  at: number;
  /** The job's `finishedOn`, read by the handler or, for QueueEvents listeners, looked up after the run. */
  finishedOn?: number;
}

export interface AppStatus {
  /** Handler runs so far (every variant counts each run, duplicates included). */
  runs: number;
  firstRunAt?: number;
  lastRunAt?: number;
  /** Jobs the app's own Workers finished. */
  completed: number;
  failed: number;
}

export interface Usage {
  /** process.cpuUsage(), µs. */
  cpuUserUs: number;
  cpuSystemUs: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export type WorkerAction = 'run' | 'pause' | 'resume';

export interface Distribution {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** What `trace` collects: per-stage durations (ms) and the Redis commands the module's connections sent. */
export interface TraceReport {
  stages: Record<string, Distribution>;
  /** `<connection name> <command>` -> count. */
  commands: Record<string, number>;
}

/** Request -> reply types of the IPC between the bench process and an app process. */
export interface Protocol {
  /** `cpuUs`: process.cpuUsage() (user + system, µs) as the app is created. */
  start: { request: AppSpec; reply: { startedAt: number; readyAt: number; cpuUs: number } };
  workers: { request: { action: WorkerAction }; reply: { at: number } };
  status: { request: Record<string, never>; reply: AppStatus };
  usage: { request: { gc: boolean }; reply: Usage };
  collect: { request: Record<string, never>; reply: { samples: HandlerSample[] } };
  /** Resolves once the module has nothing left to do (FlowFailureService.whenIdle); at once for the other listeners. */
  idle: { request: { timeoutMs: number }; reply: { at: number } };
  /** The stage timings so far (undefined without `trace`); `reset` starts a new window. */
  trace: { request: { reset: boolean }; reply: TraceReport | undefined };
  stop: { request: Record<string, never>; reply: { closedAt: number } };
}

export type RequestKind = keyof Protocol;

export interface RequestEnvelope<K extends RequestKind = RequestKind> {
  id: number;
  kind: K;
  body: Protocol[K]['request'];
}

export type ReplyEnvelope = { id: number; ok: true; body: unknown } | { id: number; ok: false; error: string };
