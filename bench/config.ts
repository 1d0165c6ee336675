import { join } from 'node:path';
import { repoRoot } from './harness/repo-root.js';
import { LAYOUTS, type Layout } from './shared/protocol.js';
import { VARIANTS, type VariantName } from './shared/variants.js';

export const SCENARIOS = ['latency', 'overhead', 'memory', 'catchup', 'telemetry'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Every knob of a run. Counts are scaled by BENCH_SCALE unless set explicitly. */
export interface BenchConfig {
  scale: number;
  scenarios: ScenarioName[];
  /** Restricts every scenario to these variants (the baseline always runs). */
  variants?: VariantName[];
  /** Where the Workers run in the latency, throughput and catch-up scenarios (see shared/protocol.ts). */
  layouts: Layout[];
  workerConcurrency: number;
  latency: { flows: number; warmupFlows: number; flowsPerSecond: number; rounds: number; throughputFlows: number };
  overhead: {
    successes: number;
    /** 'jobs': plain jobs; 'flows': successful flows of a parent and one child (two jobs each). */
    successKind: 'jobs' | 'flows';
    failures: number;
    jobsPerMinute: number;
    variants: VariantName[];
  };
  /** warmUpFailures: handled before the first reading, so that the listener's bounded memories are full. */
  memory: { failures: number; batchFailures: number; warmUpFailures: number; variants: VariantName[] };
  /** eventsMaxLen undefined: BullMQ's default stream length. */
  catchUp: { failures: number; eventsMaxLen?: number; rounds: number };
  /** Rounds of the module without and with the OpenTelemetry SDK, alternating. */
  telemetry: { rounds: number };
  /** Write CPU profiles of the app processes (node --cpu-prof) to this folder. */
  profileDir?: string;
  trace: boolean;
  /** Use this Redis instead of starting one (command counts then include other clients' commands). */
  redisUrl?: string;
  outFile: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const scale = positive('BENCH_SCALE', env.BENCH_SCALE, 1);
  const count = (name: string, full: number, min: number) => Math.max(min, Math.round(positive(name, env[name], full * scale)));
  const root = repoRoot();
  const variants = list(env.BENCH_VARIANTS)?.map((name) => {
    if (!(name in VARIANTS)) throw new Error(`BENCH_VARIANTS: unknown variant ${name} (known: ${Object.keys(VARIANTS).join(', ')})`);
    return name as VariantName;
  });
  const scenarios = (list(env.BENCH_SCENARIOS) ?? [...SCENARIOS]).map((name) => {
    if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`BENCH_SCENARIOS: unknown scenario ${name} (known: ${SCENARIOS.join(', ')})`);
    return name as ScenarioName;
  });
  const layouts = (list(env.BENCH_LAYOUTS) ?? [...LAYOUTS]).map((name) => {
    if (!(LAYOUTS as readonly string[]).includes(name)) throw new Error(`BENCH_LAYOUTS: unknown layout ${name} (known: ${LAYOUTS.join(', ')})`);
    return name as Layout;
  });
  const profile = env.BENCH_PROFILE === '1' || env.BENCH_PROFILE === 'true';
  return {
    scale,
    scenarios,
    variants,
    layouts,
    workerConcurrency: count('BENCH_WORKER_CONCURRENCY', 50, 1),
    latency: {
      flows: count('BENCH_FLOWS', 2000, 50),
      warmupFlows: count('BENCH_WARMUP_FLOWS', 200, 20),
      flowsPerSecond: positive('BENCH_RATE', env.BENCH_RATE, 100),
      // Segments of at least ~100 flows: shorter ones spend more time on bookkeeping than on measuring.
      rounds: Math.round(positive('BENCH_ROUNDS', env.BENCH_ROUNDS, Math.min(20, Math.max(1, Math.round((2000 * scale) / 100))))),
      throughputFlows: count('BENCH_THROUGHPUT_FLOWS', 5000, 200),
    },
    overhead: {
      successes: count('BENCH_OVERHEAD_JOBS', 50_000, 1000),
      successKind: oneOf('BENCH_OVERHEAD_SUCCESSES', env.BENCH_OVERHEAD_SUCCESSES, ['jobs', 'flows'] as const, 'jobs'),
      // 2 failures per fail-parent flow: 500 failures = 250 flows.
      failures: 2 * Math.round(count('BENCH_OVERHEAD_FAILURES', 500, 20) / 2),
      jobsPerMinute: positive('BENCH_JOBS_PER_MINUTE', env.BENCH_JOBS_PER_MINUTE, 50_000),
      variants: ['raw-queue-events', 'none', 'module-worker', 'module-stream', 'module-both'],
    },
    memory: {
      failures: count('BENCH_MEMORY_FAILURES', 100_000, 2000),
      batchFailures: count('BENCH_MEMORY_BATCH', 10_000, 1000),
      warmUpFailures: count('BENCH_MEMORY_WARMUP', 30_000, 1000),
      variants: ['raw-queue-events', 'module-both'],
    },
    catchUp: {
      failures: 2 * Math.round(count('BENCH_CATCHUP_FAILURES', 6000, 400) / 2),
      eventsMaxLen: env.BENCH_CATCHUP_MAXLEN ? positive('BENCH_CATCHUP_MAXLEN', env.BENCH_CATCHUP_MAXLEN, 0) : undefined,
      rounds: Math.round(positive('BENCH_CATCHUP_ROUNDS', env.BENCH_CATCHUP_ROUNDS, scale < 1 ? 1 : 3)),
    },
    telemetry: { rounds: Math.round(positive('BENCH_TELEMETRY_ROUNDS', env.BENCH_TELEMETRY_ROUNDS, scale < 1 ? 1 : 5)) },
    profileDir: profile ? join(root, 'bench', 'results', 'profiles') : undefined,
    trace: env.BENCH_TRACE === '1' || env.BENCH_TRACE === 'true',
    redisUrl: env.BENCH_REDIS_URL || undefined,
    outFile: env.BENCH_OUT || join(root, 'bench', 'results', 'latest.json'),
  };
}

/**
 * The variants of a scenario that this run measures: its own list (baseline first), narrowed
 * by BENCH_VARIANTS; the baseline and 'none' always stay, the ratios need them.
 */
export function selectVariants(config: BenchConfig, own: readonly VariantName[]): VariantName[] {
  const wanted = config.variants;
  if (!wanted) return [...own];
  return own.filter((name, i) => i === 0 || name === 'none' || wanted.includes(name));
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return value;
}

function list(raw: string | undefined): string[] | undefined {
  const items = raw?.split(',').map((item) => item.trim()).filter(Boolean);
  return items && items.length > 0 ? items : undefined;
}

function oneOf<T extends string>(name: string, raw: string | undefined, allowed: readonly T[], fallback: T): T {
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new Error(`${name}: expected one of ${allowed.join(', ')}, got ${raw}`);
  return raw as T;
}
