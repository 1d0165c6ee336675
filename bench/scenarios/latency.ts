import { selectVariants } from '../config.js';
import { type Table, format } from '../harness/table.js';
import { BASELINE, type VariantName } from '../shared/variants.js';
import { LatencyRun, type LatencyResult } from './latency-run.js';
import { type Scenario, type TargetCheck, ratio } from './scenario.js';

const VARIANTS: VariantName[] = [BASELINE, 'nest-on-queue-event', 'hand-written-reader', 'module-worker', 'module-stream', 'module-both'];

/**
 * 1. Handler-start latency: fail-parent flows at a steady, unsaturated rate; each flow's child
 *    and parent failure is one sample of `handler start - job.finishedOn`.
 * 2. Throughput: with the Workers paused, a backlog of flows is queued; then the Workers resume
 *    and fail them as fast as they can, and the listener keeps up or falls behind.
 */
export const latencyScenario: Scenario = async (context) => {
  const { flows, warmupFlows, flowsPerSecond, rounds, throughputFlows } = context.config.latency;
  const runs: LatencyRun[] = [];
  let results: LatencyResult[];
  try {
    for (const variant of selectVariants(context.config, VARIANTS)) runs.push(await LatencyRun.start(context, variant));
    context.log(`latency: ${runs.length} apps up (${runs.map((r) => r.variant).join(', ')}); warming up`);
    for (const run of runs) await run.warmUp(warmupFlows, flowsPerSecond);
    // Round r feeds every variant one segment, starting one variant later than round r - 1.
    const perRound = Math.ceil(flows / rounds);
    for (let round = 0; round < rounds; round++) {
      const from = round * perRound;
      const count = Math.min(perRound, flows - from);
      if (count <= 0) break;
      context.log(`latency: round ${round + 1}/${rounds}`);
      for (let i = 0; i < runs.length; i++) await runs[(round + i) % runs.length].segment(from, count, flowsPerSecond);
    }
    for (const run of runs) {
      context.log(`throughput: ${run.variant}`);
      await run.throughput(throughputFlows);
    }
    results = [];
    for (const run of runs) results.push(await run.result(throughputFlows));
  } finally {
    for (const run of runs) await run.stop();
  }
  const base = results.find((r) => r.variant === BASELINE);
  const targets: TargetCheck[] = [];
  for (const r of results.filter((r) => r.variant.startsWith('module-'))) {
    const p50 = ratio(r.latencyMs.p50, base?.latencyMs.p50);
    const p99 = ratio(r.latencyMs.p99, base?.latencyMs.p99);
    targets.push({ target: 'latency p50 <= 1.5x raw QueueEvents', variant: r.variant, measured: format.ratio(p50), ok: p50 === undefined ? undefined : p50 <= 1.5 });
    targets.push({ target: 'latency p99 <= 2x raw QueueEvents', variant: r.variant, measured: format.ratio(p99), ok: p99 === undefined ? undefined : p99 <= 2 });
  }
  return {
    scenario: 'latency',
    targets,
    data: { flows, flowsPerSecond, rounds, throughputFlows, results },
    tables: [
      {
        title: `Handler-start latency: ${flows} fail-parent flows (${2 * flows} failures) per variant at ${flowsPerSecond} flows/s, in ${rounds} interleaved rounds; ms from job.finishedOn`,
        columns: ['variant', 'handled', 'missed', 'dup', 'p50', 'p95', 'p99', 'p50 ratio', 'p99 ratio', 'cmds/failure'],
        rows: results.map((r) => [
          r.variant,
          format.int(r.handled),
          format.int(r.missed),
          format.int(r.duplicates),
          format.ms(r.latencyMs.p50),
          format.ms(r.latencyMs.p95),
          format.ms(r.latencyMs.p99),
          format.ratio(ratio(r.latencyMs.p50, base?.latencyMs.p50)),
          format.ratio(ratio(r.latencyMs.p99, base?.latencyMs.p99)),
          format.fixed(r.commandsPerFailure, 1),
        ]),
        notes: [
          'ratio = variant / raw QueueEvents (target for the module: p50 <= 1.5x, p99 <= 2x).',
          'hand-written-reader: QueueEvents + Job.fromId per failed event, no exactly-once: the facts the stream source has to fetch too (a reference, not a target).',
          'cmds/failure: every Redis command in the window (producer + Workers + listener) / failures; compare across rows.',
          'finishedOn has 1 ms steps: every latency includes 0..1 ms of truncation, the same for all rows.',
        ],
      },
      {
        title: `Throughput at saturation: ${throughputFlows} flows (${2 * throughputFlows} failures) queued, then the Workers resume`,
        columns: ['variant', 'handled', 'missed', 'handled/s', 'ratio', 'Workers failed/s'],
        rows: results.map((r) => [
          r.variant,
          format.int(r.throughput.handled),
          format.int(r.throughput.failures - r.throughput.handled),
          format.int(r.throughput.perSecond),
          format.ratio(ratio(r.throughput.perSecond, base?.throughput.perSecond)),
          format.int(r.throughput.workerFailuresPerSecond),
        ]),
        notes: [
          'Workers failed/s: the rate the app\'s own Workers produced failures (the same Workers in every row); a listener at that rate keeps up.',
          'missed: never handled (waiting stops 10 s after the last handler run); handled/s counts handled failures only.',
        ],
      },
      ...(context.config.trace ? [traceTable(results)] : []),
    ],
  };
};

/** BENCH_TRACE: where the module's latency goes, stage by stage (see app/tracing.ts). */
function traceTable(results: LatencyResult[]): Table {
  const rows: string[][] = [];
  for (const r of results) {
    for (const [stage, d] of Object.entries(r.trace?.stages ?? {})) {
      rows.push([r.variant, stage, format.int(d.count), format.ms(d.mean), format.ms(d.p50), format.ms(d.p95), format.ms(d.p99)]);
    }
  }
  return {
    title: 'BENCH_TRACE: the module\'s stages in the latency window, ms (call:* = one call; <source>:* = per handled failure)',
    columns: ['variant', 'stage', 'count', 'mean', 'p50', 'p95', 'p99'],
    rows,
    notes: ['signal: finishedOn -> classify(); classify: job loads, EXISTS, root cause; claim: classify() done -> claim script answered; queue: -> handler.'],
  };
}
