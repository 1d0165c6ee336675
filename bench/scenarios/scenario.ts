import type { BenchConfig, ScenarioName } from '../config.js';
import type { BenchRedis } from '../harness/bench-redis.js';
import { AppProcess } from '../harness/app-process.js';
import type { Table } from '../harness/table.js';
import { waitFor } from '../harness/wait.js';
import type { AppSpec, Layout } from '../shared/protocol.js';
import type { VariantName } from '../shared/variants.js';

export interface ScenarioContext {
  config: BenchConfig;
  redis: BenchRedis;
  log(line: string): void;
}

/** One target of the issue, checked on one variant. */
export interface TargetCheck {
  target: string;
  variant: string;
  measured: string;
  ok: boolean | undefined;
}

export interface ScenarioResult {
  scenario: ScenarioName;
  tables: Table[];
  targets: TargetCheck[];
  /** Everything measured, for bench/results/latest.json. */
  data: unknown;
}

export type Scenario = (context: ScenarioContext) => Promise<ScenarioResult>;

/** The AppSpec of a variant, with the run's defaults (the 'workers' layout unless `extra` says otherwise). */
export function appSpec(context: ScenarioContext, variant: VariantName, prefix: string, extra: Partial<AppSpec> = {}): AppSpec {
  return {
    variant,
    prefix,
    redisUrl: context.redis.url,
    record: 'samples',
    layout: 'workers',
    workerConcurrency: context.config.workerConcurrency,
    trace: context.config.trace,
    ...extra,
  };
}

/** Launches the app process of `spec`, profiled when the run asks for it. */
export function launchApp(context: ScenarioContext, scenario: ScenarioName, spec: AppSpec, phase = '') {
  return AppProcess.launch(spec, {
    profileDir: context.config.profileDir,
    profileName: `${scenario}-${spec.variant}${phase ? `-${phase}` : ''}`,
  });
}

/**
 * The app under test and the app process whose Workers fail its jobs: the same process in
 * the 'workers' layout; in the 'service' layout a second app of the 'none' variant (Workers,
 * no listener) under the same prefix, as another service of the user's would be.
 */
export interface Deployment {
  app: AppProcess;
  workers: AppProcess;
  stop(): Promise<void>;
}

export async function deploy(context: ScenarioContext, scenario: ScenarioName, spec: AppSpec): Promise<Deployment> {
  const stopOrKill = (process: AppProcess) => process.stop().catch(() => process.kill());
  if (spec.layout === 'workers') {
    const { app } = await launchApp(context, scenario, spec);
    return { app, workers: app, stop: () => stopOrKill(app) };
  }
  const { app: workers } = await launchApp(context, scenario, { ...spec, variant: 'none', layout: 'workers', record: 'count', trace: false }, `workers-for-${spec.variant}`);
  try {
    const { app } = await launchApp(context, scenario, spec, 'service');
    return { app, workers, stop: async () => void (await Promise.all([stopOrKill(app), stopOrKill(workers)])) };
  } catch (error) {
    await stopOrKill(workers);
    throw error;
  }
}

/** How a result row names its variant: the layout only when it is not the usual one. */
export function rowName(variant: VariantName, layout: Layout): string {
  return layout === 'workers' ? variant : `${variant} (service)`;
}

/**
 * Waits until the app's handlers ran `runs` times. Gives up (false) after `timeoutMs`, or
 * earlier when the count has not moved for `stallMs`: a listener that lost events (e.g. stream
 * entries trimmed before it read them) is then reported with what it handled, without waiting
 * out the whole timeout.
 */
export async function waitForRuns(app: AppProcess, runs: number, timeoutMs: number, stallMs = 10_000): Promise<boolean> {
  let last = -1;
  let lastChange = Date.now();
  const deadline = Date.now() + timeoutMs;
  return waitFor(
    async () => {
      const now = (await app.request('status', {})).runs;
      if (now >= runs) return true;
      if (now !== last) {
        last = now;
        lastChange = Date.now();
      }
      if (Date.now() - lastChange > stallMs || Date.now() > deadline) throw new StalledError();
      return false;
    },
    timeoutMs + stallMs,
    50,
  ).catch((error: unknown) => {
    if (error instanceof StalledError) return false;
    throw error;
  });
}

class StalledError extends Error {}

/** Ratio of a variant's value to the baseline's; undefined when either is missing. */
export function ratio(value: number | undefined, baseline: number | undefined): number | undefined {
  return value !== undefined && baseline !== undefined && baseline > 0 && Number.isFinite(value) ? value / baseline : undefined;
}
