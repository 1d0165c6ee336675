import { type Table, format } from '../harness/table.js';
import { distribution } from '../shared/stats.js';
import type { VariantName } from '../shared/variants.js';
import { LatencyRun, type LatencyResult } from './latency-run.js';
import { type Scenario, type TargetCheck, ratio, rowName } from './scenario.js';

/** The module without and with the OpenTelemetry SDK registered. */
const WITHOUT: VariantName = 'module-both';
const WITH: VariantName = 'module-otel';
/** The app has no Workers: what it does is the module's work (see below). */
const LAYOUT = 'service' as const;
/** Metrics and traces may cost at most this share of handler throughput. */
const MAX_COST = 0.05;

const median = (values: number[]) => distribution(values).p50;

/**
 * What metrics and traces cost: the throughput scenario's backlog (Workers paused, flows
 * queued, Workers resumed) for the module with its defaults, without and with an SDK
 * registered, alternating over rounds; each row is the median round. It runs in the
 * service layout: the app does nothing but the module's work, so its handled/s and its CPU
 * are the module's. (In the workers layout the module shares the process with its Workers,
 * and at saturation handled/s moves with how long the last failures wait for a sweep, which
 * the SDK has nothing to do with.) The target is judged on handled/s; the CPU per failure
 * is shown beside it: a catch-up, which is CPU-bound, pays about that share.
 */
export const telemetryScenario: Scenario = async (context) => {
  const { warmupFlows, flowsPerSecond, throughputFlows } = context.config.latency;
  const { rounds } = context.config.telemetry;
  const perVariant = new Map<VariantName, LatencyResult[]>([
    [WITHOUT, []],
    [WITH, []],
  ]);
  for (let round = 1; round <= rounds; round++) {
    for (const variant of round % 2 === 1 ? [WITHOUT, WITH] : [WITH, WITHOUT]) {
      context.log(`telemetry: ${rowName(variant, LAYOUT)}, round ${round}/${rounds}`);
      const run = await LatencyRun.start(context, variant, LAYOUT);
      try {
        await run.warmUp(warmupFlows, flowsPerSecond);
        await run.throughput(throughputFlows);
        perVariant.get(variant)?.push(await run.result(throughputFlows));
      } finally {
        await run.stop();
      }
    }
  }
  const rows = [...perVariant].map(([variant, results]) => ({
    variant,
    perSecond: median(results.map((r) => r.throughput.perSecond)),
    cpuUs: median(results.map((r) => r.throughput.appCpuUsPerFailure)),
    roundsPerSecond: results.map((r) => r.throughput.perSecond),
    rounds: results.map((r) => ({ missed: r.missed, duplicates: r.duplicates, throughput: r.throughput })),
    exactlyOnce: results.every((r) => r.missed === 0 && r.duplicates === 0 && r.throughput.runs === r.throughput.failures),
  }));
  const base = rows.find((r) => r.variant === WITHOUT);
  const traced = rows.find((r) => r.variant === WITH);
  const kept = ratio(traced?.perSecond, base?.perSecond);
  const cpu = ratio(traced?.cpuUs, base?.cpuUs);
  const name = rowName(WITH, LAYOUT);
  const targets: TargetCheck[] = [
    {
      target: `metrics and traces cost < ${MAX_COST * 100} % of handler throughput (handled/s at saturation)`,
      variant: name,
      measured: kept === undefined ? '-' : `${format.ratio(kept)} of ${rowName(WITHOUT, LAYOUT)}'s (CPU per failure ${format.ratio(cpu)})`,
      ok: kept === undefined ? undefined : kept >= 1 - MAX_COST,
    },
    { target: 'telemetry runs exactly once', variant: name, measured: traced?.exactlyOnce ? 'yes' : 'no', ok: traced?.exactlyOnce },
  ];
  const table: Table = {
    title: `Telemetry, service layout: ${throughputFlows} flows (${2 * throughputFlows} failures) at saturation, without and with the OpenTelemetry SDK (median of ${rounds} rounds)`,
    columns: ['variant', 'handled/s', 'rounds handled/s', 'ratio', 'app CPU µs/failure', 'CPU ratio', 'exactly once'],
    rows: rows.map((r) => [
      rowName(r.variant, LAYOUT),
      format.int(r.perSecond),
      r.roundsPerSecond.map((v) => format.int(v)).join(' '),
      format.ratio(ratio(r.perSecond, base?.perSecond)),
      format.int(r.cpuUs),
      format.ratio(ratio(r.cpuUs, base?.cpuUs)),
      r.exactlyOnce ? 'yes' : 'NO',
    ]),
    notes: [
      `${WITH}: metrics collected every second (the observable gauges read Redis then), spans through a BatchSpanProcessor, exported nowhere.`,
      'handled/s: from the resume to the last handler start; the target is judged on it.',
      "app CPU: per failure over the same time; the Workers run in another process, so it is the module's (and the SDK's).",
    ],
  };
  return { scenario: 'telemetry', targets, data: { throughputFlows, rounds, rows }, tables: [table] };
};
