import { selectVariants } from '../config.js';
import { uniquePrefix } from '../harness/bench-redis.js';
import { Producer } from '../harness/producer.js';
import { format } from '../harness/table.js';
import type { Usage } from '../shared/protocol.js';
import { BASELINE, type VariantName, variantSpec } from '../shared/variants.js';
import { type Scenario, type ScenarioContext, type TargetCheck, appSpec, launchApp, waitForRuns } from './scenario.js';

/**
 * Memory is "flat" when the heap's trend over the run (least-squares slope x failures) stays
 * under this. A leak of 20 bytes per failure crosses it at 100,000 failures; GC noise between
 * readings is a few hundred KB, well under it.
 */
const FLAT_GROWTH_BYTES = 2 * 2 ** 20;

interface MemoryResult {
  variant: VariantName;
  description: string;
  failures: number;
  handled: number;
  /** After the warm-up and a full GC. */
  before: Usage;
  after: Usage;
  /** Heap used after GC at the end of each batch: the trend, not just two points. */
  heapAfterBatches: number[];
  /** Least-squares slope of heapAfterBatches per handled failure, bytes. */
  heapSlopeBytesPerFailure: number;
  /** The slope over all failures: the heap growth the trend says this run caused, bytes. */
  heapTrendBytes: number;
  flat: boolean;
  /** Redis used_memory growth per handled failure, bytes: the failed jobs themselves plus what the listener stores. */
  redisBytesPerFailure: number;
}

/**
 * Memory per event: the app handles failures in batches at saturation; heap (after a full GC)
 * and RSS are read after a warm-up and after each further batch. Whatever the module keeps
 * per event (maps, caches, listeners) shows as a slope. The warm-up (30,000 failures) fills
 * the module's bounded memories first: the runs it remembers starting hold 20,000, and its
 * heap reaches its plateau after about 40,000 failures (measured over 300,000); a reading
 * taken while they still fill would show their filling as a trend.
 */
export const memoryScenario: Scenario = async (context) => {
  const results: MemoryResult[] = [];
  for (const variant of selectVariants(context.config, context.config.memory.variants)) {
    context.log(`memory: ${variant}`);
    results.push(await measure(context, variant));
  }
  const targets: TargetCheck[] = results
    .filter((r) => r.variant !== BASELINE)
    .map((r) => ({
      target: `memory flat over ${format.int(r.failures)} failures (heap trend < ${format.mb(FLAT_GROWTH_BYTES)} MB)`,
      variant: r.variant,
      measured: `trend ${format.signedMb(r.heapTrendBytes)} MB (${format.fixed(r.heapSlopeBytesPerFailure, 1)} B/failure)`,
      ok: r.flat,
    }));
  const { failures, batchFailures, warmUpFailures } = context.config.memory;
  return {
    scenario: 'memory',
    targets,
    data: { failures, batchFailures, warmUpFailures, flatGrowthBytes: FLAT_GROWTH_BYTES, results },
    tables: [
      {
        title: `Memory: heap (after GC) and RSS of the app process before and after ${format.int(failures)} handled failures (after ${format.int(warmUpFailures)} to warm up), MB`,
        columns: ['variant', 'handled', 'heap before', 'heap after', 'heap diff', 'heap trend', 'B/failure', 'RSS before', 'RSS after', 'RSS diff', 'flat', 'Redis B/failure'],
        rows: results.map((r) => [
          r.variant,
          format.int(r.handled),
          format.mb(r.before.heapUsed),
          format.mb(r.after.heapUsed),
          format.signedMb(r.after.heapUsed - r.before.heapUsed),
          format.signedMb(r.heapTrendBytes),
          format.fixed(r.heapSlopeBytesPerFailure, 1),
          format.mb(r.before.rss),
          format.mb(r.after.rss),
          format.signedMb(r.after.rss - r.before.rss),
          r.flat ? 'yes' : 'NO',
          format.int(r.redisBytesPerFailure),
        ]),
        notes: [
          `heap trend: least-squares slope of the heap after each batch x failures; flat when under ${format.mb(FLAT_GROWTH_BYTES)} MB. RSS also holds freed-but-kept pages: shown, not judged.`,
          'Redis B/failure: growth of Redis used_memory per failure (the failed jobs, the same in every row, plus what the listener keeps).',
        ],
      },
    ],
  };
};

async function measure(context: ScenarioContext, variant: VariantName): Promise<MemoryResult> {
  const { failures, batchFailures, warmUpFailures } = context.config.memory;
  const batches = Math.max(2, Math.round(failures / batchFailures));
  const flowsPerBatch = Math.round(failures / batches / 2);
  const warmUpFlows = Math.max(flowsPerBatch, Math.round(warmUpFailures / 2));
  const prefix = uniquePrefix('memory', variant);
  const producer = new Producer(context.redis.url, prefix);
  const { app } = await launchApp(context, 'memory', appSpec(context, variant, prefix, { record: 'count' }));
  const timeout = 120_000 + 10 * flowsPerBatch;
  try {
    await app.request('workers', { action: 'run' });
    // Warm-up: pools, JIT and caches reach their working size before the first reading.
    await producer.addFlows('w', 0, warmUpFlows);
    if (!(await waitForRuns(app, 2 * warmUpFlows, timeout + 10 * warmUpFlows))) throw new Error(`memory: ${variant} did not handle the warm-up`);
    const before = await app.request('usage', { gc: true });
    const redisBefore = await context.redis.snapshot();
    const heapAfterBatches: number[] = [];
    let after = before;
    for (let batch = 1; batch <= batches; batch++) {
      await producer.addFlows(`b${batch}`, 0, flowsPerBatch);
      if (!(await waitForRuns(app, 2 * (warmUpFlows + flowsPerBatch * batch), timeout))) {
        context.log(`memory: ${variant} fell behind in batch ${batch}; stopping early`);
        break;
      }
      after = await app.request('usage', { gc: true });
      heapAfterBatches.push(after.heapUsed);
    }
    const handled = (await app.request('status', {})).runs - 2 * warmUpFlows;
    const redisAfter = await context.redis.snapshot();
    const perBatch = 2 * flowsPerBatch;
    const slope = slopeOf([before.heapUsed, ...heapAfterBatches]) / perBatch;
    const heapTrendBytes = slope * handled;
    return {
      variant,
      description: variantSpec(variant).description,
      failures: 2 * flowsPerBatch * batches,
      handled,
      before,
      after,
      heapAfterBatches,
      heapSlopeBytesPerFailure: slope,
      heapTrendBytes,
      flat: heapTrendBytes < FLAT_GROWTH_BYTES,
      redisBytesPerFailure: (redisAfter.usedMemory - redisBefore.usedMemory) / handled,
    };
  } finally {
    await app.stop().catch(() => app.kill());
    await producer.close();
    await context.redis.cleanup(prefix);
  }
}

/** Least-squares slope of equally spaced readings, per step. */
function slopeOf(values: number[]): number {
  const n = values.length;
  if (n < 2) return 0;
  const meanX = (n - 1) / 2;
  const meanY = values.reduce((sum, value) => sum + value, 0) / n;
  let numerator = 0;
  let denominator = 0;
  values.forEach((value, x) => {
    numerator += (x - meanX) * (value - meanY);
    denominator += (x - meanX) ** 2;
  });
  return numerator / denominator;
}
