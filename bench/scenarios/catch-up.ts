import { selectVariants } from '../config.js';
import { uniquePrefix } from '../harness/bench-redis.js';
import { Producer, StandInWorkers } from '../harness/producer.js';
import { format } from '../harness/table.js';
import { waitFor, sleep } from '../harness/wait.js';
import type { TraceReport } from '../shared/protocol.js';
import { WATCHED_QUEUES } from '../shared/queues.js';
import { type VariantName, variantSpec } from '../shared/variants.js';
import { type Scenario, type ScenarioContext, type TargetCheck, appSpec, launchApp, ratio, waitForRuns } from './scenario.js';

/** The hand-written reader is the baseline here: the raw listener cannot catch up at all. */
const VARIANTS: VariantName[] = ['hand-written-reader', 'module-both'];
/** After the last expected run, how long to keep counting: a duplicate would show up in this time. */
const SETTLE_MS = 3000;

interface CatchUpResult {
  variant: VariantName;
  description: string;
  failures: number;
  /** Entries in the events streams when the app started: what a reader from the start has to go through. */
  streamEntries: number;
  runs: number;
  distinct: number;
  exactlyOnce: boolean;
  /** App start (before Nest creates it) -> its bootstrap is done, ms. */
  bootMs: number;
  /** App start -> the handler start of the last failure, ms. */
  catchUpMs: number;
  perSecond: number;
  /** `opts.maxLenEvents` of the queues' meta after the run (the bench declared eventsMaxLen). */
  metaMaxLenAfter: (string | null)[];
  /** BENCH_TRACE: the module's stages during the catch-up. */
  trace?: TraceReport;
}

/**
 * Failures that happen while the app is down: the app runs once (the module creates its
 * consumer group) and stops; stand-in Workers in the bench process fail the flows; then the
 * app starts again and the time until the last failure's handler starts is measured. Runs
 * are counted to show the module's exactly-once (each failure once, nothing twice).
 */
export const catchUpScenario: Scenario = async (context) => {
  const results: CatchUpResult[] = [];
  for (const variant of selectVariants(context.config, VARIANTS)) {
    context.log(`catch-up: ${variant}`);
    results.push(await measure(context, variant));
  }
  const base = results[0];
  const speed = (r: CatchUpResult) => ratio(base?.catchUpMs, r.catchUpMs);
  const targets: TargetCheck[] = results.slice(1).flatMap((r) => [
    { target: 'catch-up >= 0.5x as fast as the hand-written reader', variant: r.variant, measured: format.ratio(speed(r)), ok: (speed(r) ?? 0) >= 0.5 },
    { target: 'catch-up exactly once', variant: r.variant, measured: `${r.runs} runs, ${r.distinct} distinct of ${r.failures}`, ok: r.exactlyOnce },
  ]);
  const { failures, eventsMaxLen } = context.config.catchUp;
  return {
    scenario: 'catchup',
    targets,
    data: { failures, eventsMaxLen, results },
    tables: [
      {
        title: `Catch-up: ${format.int(failures)} failures (${failures / 2} fail-parent flows) while the app was down, then the app starts`,
        columns: ['variant', 'runs', 'distinct', 'exactly once', 'boot ms', 'catch-up ms', 'failures/s', 'speed ratio'],
        rows: results.map((r) => [
          r.variant,
          format.int(r.runs),
          format.int(r.distinct),
          r.exactlyOnce ? 'yes' : 'NO',
          format.int(r.bootMs),
          format.int(r.catchUpMs),
          format.int(r.perSecond),
          format.ratio(speed(r)),
        ]),
        notes: [
          'catch-up ms: from the app process creating the Nest app to the last failure\'s handler start (boot included for both).',
          'speed ratio = hand-written time / this time (target >= 0.5x). The hand-written reader has no exactly-once: a second replica or a restart reads everything again.',
          `The queues declare streams.events.maxLen = ${format.int(eventsMaxLen)} so that the whole outage stays in the stream for both readers; with BullMQ's default 10,000 a reader from '0' loses the oldest failures (see streamEntries in the JSON).`,
        ],
      },
    ],
  };
};

async function measure(context: ScenarioContext, variant: VariantName): Promise<CatchUpResult> {
  const { failures, eventsMaxLen } = context.config.catchUp;
  const prefix = uniquePrefix('catchup', variant);
  const spec = appSpec(context, variant, prefix, { eventsMaxLen });
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
    const streamEntries = (await Promise.all(WATCHED_QUEUES.map((q) => context.redis.admin.xlen(`${prefix}:${q}:events`)))).reduce((a, b) => a + b, 0);

    // 3. The app starts again; how long until every failure's handler ran?
    const { app, startedAt, readyAt } = await launchApp(context, 'catchup', spec);
    try {
      await app.request('workers', { action: 'run' });
      await waitForRuns(app, failures, 120_000);
      await sleep(SETTLE_MS);
      const { samples } = await app.request('collect', {});
      const trace = await app.request('trace', { reset: false });
      const distinct = new Set(samples.map((s) => `${s.queueName}:${s.jobId}`)).size;
      const lastRun = firstRunsLast(samples);
      const metaMaxLenAfter = await Promise.all(WATCHED_QUEUES.map((q) => context.redis.admin.hget(`${prefix}:${q}:meta`, 'opts.maxLenEvents')));
      const catchUpMs = lastRun - startedAt;
      return {
        variant,
        description: variantSpec(variant).description,
        failures,
        streamEntries,
        runs: samples.length,
        distinct,
        exactlyOnce: samples.length === failures && distinct === failures,
        bootMs: readyAt - startedAt,
        catchUpMs,
        perSecond: distinct / (catchUpMs / 1000),
        metaMaxLenAfter,
        trace,
      };
    } finally {
      await app.stop().catch(() => app.kill());
    }
  } finally {
    await context.redis.cleanup(prefix);
  }
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
