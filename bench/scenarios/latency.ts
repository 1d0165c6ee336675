import { selectVariants } from '../config.js';
import { type Table, format } from '../harness/table.js';
import type { Layout } from '../shared/protocol.js';
import { BASELINE, type VariantName } from '../shared/variants.js';
import { LatencyRun, type LatencyResult } from './latency-run.js';
import { type Scenario, type TargetCheck, ratio } from './scenario.js';

const VARIANTS: Record<Layout, VariantName[]> = {
  workers: [BASELINE, 'nest-on-queue-event', 'hand-written-reader', 'module-worker', 'module-stream', 'module-both'],
  // No Workers in the app: the module's worker source has nothing to listen to, the stream leads.
  service: [BASELINE, 'module-both'],
};
const TARGET = { p50: 1.2, p99: 1.5, throughput: 0.8 };

/**
 * 1. Handler-start latency: fail-parent flows at a steady, unsaturated rate; each flow's child
 *    and parent failure is one sample of `handler start - job.finishedOn`.
 * 2. Throughput: with the Workers paused, a backlog of flows is queued; then the Workers resume
 *    and fail them as fast as they can, and the listener keeps up or falls behind.
 * Both in the two layouts; each row's ratios are to the raw listener of its own layout.
 */
export const latencyScenario: Scenario = async (context) => {
  const { flows, warmupFlows, flowsPerSecond, rounds, throughputFlows } = context.config.latency;
  const runs: LatencyRun[] = [];
  let results: LatencyResult[];
  try {
    // Started together (nothing is measured yet); those that started are stopped below even if one did not.
    const starting = context.config.layouts.flatMap((layout) =>
      selectVariants(context.config, VARIANTS[layout]).map((variant) => LatencyRun.start(context, variant, layout)),
    );
    const started = await Promise.allSettled(starting);
    for (const outcome of started) if (outcome.status === 'fulfilled') runs.push(outcome.value);
    const failed = started.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    context.log(`latency: ${runs.length} apps up (${runs.map((r) => r.name).join(', ')}); warming up`);
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
      context.log(`throughput: ${run.name}`);
      await run.throughput(throughputFlows);
    }
    results = [];
    for (const run of runs) results.push(await run.result(throughputFlows));
  } finally {
    for (const run of runs) await run.stop();
  }
  const baseOf = (r: LatencyResult) => results.find((b) => b.variant === BASELINE && b.layout === r.layout);
  const latencyRatio = (r: LatencyResult, p: 'p50' | 'p99') => ratio(r.latencyMs[p], baseOf(r)?.latencyMs[p]);
  const throughputRatio = (r: LatencyResult) => ratio(r.throughput.perSecond, baseOf(r)?.throughput.perSecond);
  const atMost = (value: number | undefined, limit: number) => (value === undefined ? undefined : value <= limit);
  const targets: TargetCheck[] = [];
  for (const r of results.filter((r) => r.variant.startsWith('module-'))) {
    const p50 = latencyRatio(r, 'p50');
    const p99 = latencyRatio(r, 'p99');
    const speed = throughputRatio(r);
    const onceEach = r.missed === 0 && r.duplicates === 0 && r.throughput.handled === r.throughput.failures && r.throughput.runs === r.throughput.handled;
    targets.push({ target: `latency p50 <= ${TARGET.p50}x raw QueueEvents`, variant: r.name, measured: format.ratio(p50), ok: atMost(p50, TARGET.p50) });
    targets.push({ target: `latency p99 <= ${TARGET.p99}x raw QueueEvents`, variant: r.name, measured: format.ratio(p99), ok: atMost(p99, TARGET.p99) });
    targets.push({
      target: `throughput >= ${TARGET.throughput}x raw QueueEvents`,
      variant: r.name,
      measured: format.ratio(speed),
      ok: speed === undefined ? undefined : speed >= TARGET.throughput,
    });
    targets.push({
      target: 'latency and throughput runs exactly once',
      variant: r.name,
      measured: `missed ${r.missed + r.throughput.failures - r.throughput.handled}, dup ${r.duplicates + r.throughput.runs - r.throughput.handled}`,
      ok: onceEach,
    });
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
          r.name,
          format.int(r.handled),
          format.int(r.missed),
          format.int(r.duplicates),
          format.ms(r.latencyMs.p50),
          format.ms(r.latencyMs.p95),
          format.ms(r.latencyMs.p99),
          format.ratio(latencyRatio(r, 'p50')),
          format.ratio(latencyRatio(r, 'p99')),
          format.fixed(r.commandsPerFailure, 1),
        ]),
        notes: [
          `ratio = variant / raw QueueEvents of the same layout (target for the module: p50 <= ${TARGET.p50}x, p99 <= ${TARGET.p99}x).`,
          '(service): the app has no Workers; a second app process runs them, as another service would.',
          'hand-written-reader: QueueEvents + Job.fromId per failed event, no exactly-once: the facts the stream source has to fetch too (a reference, not a target).',
          'cmds/failure: every Redis command in the window (producer + Workers + listener) / failures; compare across rows.',
          'finishedOn has 1 ms steps: every latency includes 0..1 ms of truncation, the same for all rows.',
        ],
      },
      {
        title: `Throughput at saturation: ${throughputFlows} flows (${2 * throughputFlows} failures) queued, then the Workers resume`,
        columns: ['variant', 'handled', 'missed', 'dup', 'handled/s', 'ratio', 'Workers failed/s'],
        rows: results.map((r) => [
          r.name,
          format.int(r.throughput.handled),
          format.int(r.throughput.failures - r.throughput.handled),
          format.int(r.throughput.runs - r.throughput.handled),
          format.int(r.throughput.perSecond),
          format.ratio(throughputRatio(r)),
          format.int(r.throughput.workerFailuresPerSecond),
        ]),
        notes: [
          `ratio = handled/s / raw QueueEvents' of the same layout (target for the module: >= ${TARGET.throughput}x).`,
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
      rows.push([r.name, stage, format.int(d.count), format.ms(d.mean), format.ms(d.p50), format.ms(d.p95), format.ms(d.p99)]);
    }
  }
  return {
    title: 'BENCH_TRACE: the module\'s stages in the latency window, ms (call:* = one call; <source>:* = per handled failure)',
    columns: ['variant', 'stage', 'count', 'mean', 'p50', 'p95', 'p99'],
    rows,
    notes: ['signal: finishedOn -> classify(); classify: job loads, EXISTS, root cause; claim: classify() done -> claim script answered; queue: -> handler.'],
  };
}
