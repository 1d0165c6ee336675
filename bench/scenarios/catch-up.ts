import { selectVariants } from '../config.js';
import { uniquePrefix } from '../harness/bench-redis.js';
import { Producer, StandInWorkers } from '../harness/producer.js';
import { format } from '../harness/table.js';
import { waitFor } from '../harness/wait.js';
import type { Layout, TraceReport } from '../shared/protocol.js';
import { WATCHED_QUEUES } from '../shared/queues.js';
import { type VariantName, variantSpec } from '../shared/variants.js';
import { type Scenario, type ScenarioContext, type TargetCheck, appSpec, launchApp, ratio, rowName, waitForRuns } from './scenario.js';

/**
 * The hand-written reader first, the baseline here (the raw listener cannot catch up at all);
 * module-otel shows what metrics and traces cost where the app is CPU-bound.
 */
const VARIANTS: VariantName[] = ['hand-written-reader', 'module-both', 'module-otel'];
/** Metrics and traces may cost at most this share of a catch-up's speed (as in the telemetry scenario). */
const MAX_TELEMETRY_COST = 0.05;
/**
 * After the last expected run, the runs are counted once the module has nothing left to do
 * (no read, sweep or handler under way, none about to follow): a duplicate from any of them
 * has started by then. Only the periodic sweep (every 30 s) and lease take-overs come later.
 */
const IDLE_TIMEOUT_MS = 60_000;
const TARGET_SPEED = 1.0;

interface CatchUpResult {
  variant: VariantName;
  layout: Layout;
  name: string;
  description: string;
  failures: number;
  /** Entries in the events streams when the app started: what a reader from the start has to go through. */
  streamEntries: number;
  /** 'failed' entries among them: the failures a stream reader can see; the others were trimmed. */
  failedEntries: number;
  /** What this variant has to handle: every failure for the module, the failed entries for the reader. */
  expected: number;
  runs: number;
  distinct: number;
  exactlyOnce: boolean;
  /** App start (before Nest creates it) -> its bootstrap is done, ms. */
  bootMs: number;
  /** App start -> the handler start of the last failure it handled, ms. */
  catchUpMs: number;
  /** The app process's CPU (user + system, its garbage collector's threads included) from the Nest app's creation until it was idle after the catch-up, ms. */
  appCpuMs: number;
  perSecond: number;
  /** BENCH_TRACE: the module's stages during the catch-up. */
  trace?: TraceReport;
  /** Each round's catch-up ms, in the order run (the row shows the median round). */
  roundsMs?: number[];
}

/**
 * Failures that happen while the app is down: the app runs once (the module creates its
 * consumer group) and stops; stand-in Workers in the bench process fail the flows; then the
 * app starts again and the time until the last failure's handler starts is measured. With
 * BullMQ's default stream length the oldest entries are trimmed by then: the reader from '0'
 * never sees those failures, the module must handle them too (its sweep of the failed sets).
 */
export const catchUpScenario: Scenario = async (context) => {
  const { failures, eventsMaxLen, rounds } = context.config.catchUp;
  // Rounds alternate the variants, and each row takes its median: one catch-up lasts about a
  // second, which another process on the machine can stretch by half.
  const perRow = new Map<string, CatchUpResult[]>();
  for (let round = 1; round <= rounds; round++) {
    for (const layout of context.config.layouts) {
      for (const variant of selectVariants(context.config, VARIANTS)) {
        context.log(`catch-up: ${rowName(variant, layout)}, round ${round}/${rounds}`);
        const result = await measure(context, variant, layout);
        perRow.set(result.name, [...(perRow.get(result.name) ?? []), result]);
      }
    }
  }
  const results = [...perRow.values()].map(medianOf);
  const rowOf = (variant: VariantName, r: CatchUpResult) => results.find((b) => b.variant === variant && b.layout === r.layout);
  const speed = (r: CatchUpResult) => ratio(rowOf(VARIANTS[0], r)?.catchUpMs, r.catchUpMs);
  const withoutSdk = (r: CatchUpResult) => rowOf('module-both', r);
  const telemetryKept = (r: CatchUpResult) => ratio(withoutSdk(r)?.catchUpMs, r.catchUpMs);
  const judged = (r: CatchUpResult): TargetCheck =>
    r.variant === 'module-otel'
      ? {
          target: `metrics and traces cost < ${MAX_TELEMETRY_COST * 100} % of a catch-up's speed`,
          variant: r.name,
          measured: `${format.ratio(telemetryKept(r))} of ${withoutSdk(r)?.name ?? 'module-both'}'s`,
          ok: telemetryKept(r) === undefined ? undefined : (telemetryKept(r) ?? 0) >= 1 - MAX_TELEMETRY_COST,
        }
      : {
          target: `catch-up >= ${TARGET_SPEED}x the hand-written reader, every failure handled`,
          variant: r.name,
          measured: `${format.ratio(speed(r))}, ${format.int(r.distinct)} of ${format.int(r.failures)}`,
          ok: (speed(r) ?? 0) >= TARGET_SPEED && r.distinct === r.failures,
        };
  const targets: TargetCheck[] = results
    .filter((r) => r.variant !== VARIANTS[0])
    .flatMap((r) => [
      judged(r),
      { target: 'catch-up exactly once', variant: r.name, measured: `${r.runs} runs, ${r.distinct} distinct of ${r.failures}`, ok: r.exactlyOnce },
    ]);
  return {
    scenario: 'catchup',
    targets,
    data: { failures, eventsMaxLen: eventsMaxLen ?? 'BullMQ default', rounds, results },
    tables: [
      {
        title: `Catch-up: ${format.int(failures)} failures (${failures / 2} fail-parent flows) while the app was down, then the app starts (median of ${rounds} rounds)`,
        columns: ['variant', 'failed entries', 'handled', 'runs', 'exactly once', 'boot ms', 'catch-up ms', 'rounds ms', 'app CPU ms', 'failures/s', 'speed ratio'],
        rows: results.map((r) => [
          r.name,
          `${format.int(r.failedEntries)} of ${format.int(r.failures)}`,
          format.int(r.distinct),
          format.int(r.runs),
          r.exactlyOnce ? 'yes' : 'NO',
          format.int(r.bootMs),
          format.int(r.catchUpMs),
          (r.roundsMs ?? []).join(' '),
          format.int(r.appCpuMs),
          format.int(r.perSecond),
          format.ratio(speed(r)),
        ]),
        notes: [
          "catch-up ms: from the app process creating the Nest app to the last handler start (boot included for both); for the reader, of the failures it can see.",
          "app CPU ms: the app process's CPU (user + system, the garbage collector's threads included) from creating the Nest app until idle after the catch-up, in the median round: less noisy than the time on a shared machine.",
          `speed ratio = the reader's time / this time, same layout (target >= ${TARGET_SPEED}x, with every failure handled). The reader has no exactly-once: a second replica or a restart reads everything again.`,
          `failed entries: 'failed' events still in the streams at start (${eventsMaxLen ? `streams.events.maxLen ${format.int(eventsMaxLen)}` : "BullMQ's default stream length"}); the rest were trimmed, and only the module handles those (its sweep reads the failed sets).`,
          '(service): the app has no Workers, as a compensation service that watches queues it does not process.',
          "module-otel: module-both with the OpenTelemetry SDK registered (see the telemetry scenario); judged against module-both's time, not the reader's.",
        ],
      },
    ],
  };
};

async function measure(context: ScenarioContext, variant: VariantName, layout: Layout): Promise<CatchUpResult> {
  const { failures, eventsMaxLen } = context.config.catchUp;
  const prefix = uniquePrefix('catchup', layout === 'workers' ? variant : `${variant}-svc`);
  const spec = appSpec(context, variant, prefix, { eventsMaxLen, layout });
  try {
    // 1. The app runs once and stops: the module's consumer group now exists and waits.
    const first = await launchApp(context, 'catchup', spec, 'first');
    await first.app.request('workers', { action: 'run' });
    await first.app.stop();

    // 2. Failures while the app is down.
    const producer = new Producer(context.redis.url, prefix, eventsMaxLen);
    await producer.ready();
    const workers = new StandInWorkers(context.redis.url, prefix, context.config.workerConcurrency);
    await producer.addFlows('c', 0, failures / 2);
    const allFailed = await waitFor(() => workers.failed >= failures, 120_000, 50);
    await workers.close();
    await producer.close();
    if (!allFailed) throw new Error(`catch-up: only ${workers.failed} of ${failures} jobs failed while the app was down`);
    const { entries: streamEntries, failed: failedEntries } = await countEntries(context, prefix);
    const expected = variant === VARIANTS[0] ? failedEntries : failures;

    // 3. The app starts again; how long until every failure's handler ran?
    const { app, startedAt, readyAt, cpuUs } = await launchApp(context, 'catchup', spec);
    try {
      await app.request('workers', { action: 'run' });
      await waitForRuns(app, expected, 120_000);
      await app.request('idle', { timeoutMs: IDLE_TIMEOUT_MS });
      const usage = await app.request('usage', { gc: false });
      const { samples } = await app.request('collect', {});
      const trace = await app.request('trace', { reset: false });
      const distinct = new Set(samples.map((s) => `${s.queueName}:${s.jobId}`)).size;
      const lastRun = firstRunsLast(samples);
      const catchUpMs = lastRun - startedAt;
      return {
        variant,
        layout,
        name: rowName(variant, layout),
        description: variantSpec(variant).description,
        failures,
        streamEntries,
        failedEntries,
        expected,
        runs: samples.length,
        distinct,
        exactlyOnce: samples.length === expected && distinct === expected,
        bootMs: readyAt - startedAt,
        catchUpMs,
        appCpuMs: (usage.cpuUserUs + usage.cpuSystemUs - cpuUs) / 1000,
        perSecond: distinct / (catchUpMs / 1000),
        trace,
      };
    } finally {
      await app.stop().catch(() => app.kill());
    }
  } finally {
    await context.redis.cleanup(prefix);
  }
}

/**
 * A row over its rounds: the round of median catch-up time; runs and distinct summed, and
 * exactly once only if it held in every round.
 */
function medianOf(rounds: CatchUpResult[]): CatchUpResult {
  const sorted = [...rounds].sort((a, b) => a.catchUpMs - b.catchUpMs);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return { ...median, exactlyOnce: rounds.every((r) => r.exactlyOnce), roundsMs: rounds.map((r) => Math.round(r.catchUpMs)) };
}

/** The entries of the watched queues' events streams, and how many of them are 'failed' events. */
async function countEntries(context: ScenarioContext, prefix: string): Promise<{ entries: number; failed: number }> {
  let entries = 0;
  let failed = 0;
  for (const queue of WATCHED_QUEUES) {
    let from = '-';
    for (;;) {
      const chunk = await context.redis.admin.xrange(`${prefix}:${queue}:events`, from, '+', 'COUNT', 1000);
      for (const [, fields] of chunk) if (fields[0] === 'event' && fields[1] === 'failed') failed++;
      entries += chunk.length;
      if (chunk.length < 1000) break;
      from = `(${chunk[chunk.length - 1][0]}`;
    }
  }
  return { entries, failed };
}

/** When the last job got its first handler run. */
function firstRunsLast(samples: { queueName: string; jobId: string; at: number }[]): number {
  const first = new Map<string, number>();
  for (const sample of samples) {
    const key = `${sample.queueName}:${sample.jobId}`;
    if (!first.has(key)) first.set(key, sample.at);
  }
  return Math.max(...first.values());
}
