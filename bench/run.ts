/**
 * `npm run bench`: runs the scenarios against one Redis, prints a table per scenario with
 * each variant's ratio to the raw QueueEvents baseline, and writes bench/results/latest.json.
 * Knobs: see bench/README.md (BENCH_SCALE=0.1 for a quick run).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type ScenarioName, loadConfig } from './config.js';
import { BenchRedis } from './harness/bench-redis.js';
import { machineInfo } from './harness/machine.js';
import { format, renderTable } from './harness/table.js';
import { summarizeProfiles } from './profile/summarize.js';
import { catchUpScenario } from './scenarios/catch-up.js';
import { latencyScenario } from './scenarios/latency.js';
import { memoryScenario } from './scenarios/memory.js';
import { overheadScenario } from './scenarios/overhead.js';
import { telemetryScenario } from './scenarios/telemetry.js';
import type { Scenario, ScenarioResult, TargetCheck } from './scenarios/scenario.js';

const SCENARIO_RUNNERS: Record<ScenarioName, Scenario> = {
  latency: latencyScenario,
  overhead: overheadScenario,
  memory: memoryScenario,
  catchup: catchUpScenario,
  telemetry: telemetryScenario,
};

async function main(): Promise<void> {
  const config = loadConfig();
  const began = Date.now();
  const redis = await BenchRedis.open(config.redisUrl);
  const machine = machineInfo(await redis.version());
  const log = (line: string) => console.log(`[bench ${((Date.now() - began) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  log(`Redis ${machine.redis} at ${redis.url}${redis.owned ? ' (started by the bench)' : ' (BENCH_REDIS_URL: command counts include other clients)'}`);
  log(`${machine.cpuModel}, ${machine.cores} cores, load ${machine.loadAverageAtStart}, Node ${machine.node}, scale ${config.scale}`);
  if (machine.loadAverageAtStart > machine.cores / 2) {
    log(`WARNING: the machine is busy (load ${machine.loadAverageAtStart} on ${machine.cores} cores): expect noisy numbers`);
  }

  const results: ScenarioResult[] = [];
  const errors: { scenario: ScenarioName; error: string }[] = [];
  try {
    for (const scenario of config.scenarios) {
      try {
        const result = await SCENARIO_RUNNERS[scenario]({ config, redis, log });
        results.push(result);
        for (const table of result.tables) console.log(renderTable(table));
        console.log('');
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        errors.push({ scenario, error: message });
        log(`scenario ${scenario} failed: ${message}`);
      }
    }
  } finally {
    await redis.close();
  }

  const targets: TargetCheck[] = results.flatMap((result) => result.targets);
  console.log(
    renderTable({
      title: 'Targets (all ratios measured in this run)',
      columns: ['target', 'variant', 'measured', 'result'],
      rows: targets.map((t) => [t.target, t.variant, t.measured, format.check(t.ok)]),
    }),
  );
  const profiles = config.profileDir ? summarizeProfiles(config.profileDir) : undefined;
  if (profiles) console.log(`\nCPU profiles in ${config.profileDir}; summaries in the JSON (profiles).`);

  const seconds = (Date.now() - began) / 1000;
  const report = {
    machine,
    durationSeconds: Math.round(seconds),
    config,
    targets,
    scenarios: Object.fromEntries(results.map((result) => [result.scenario, result.data])),
    tables: results.flatMap((result) => result.tables),
    errors,
    profiles,
    notes: [
      'Numbers from one run on one machine; other processes on the machine add noise. Compare ratios within a run.',
      'Latency = handler first line (wall clock, sub-ms) - job.finishedOn (ms, truncated): includes 0..1 ms of truncation.',
    ],
  };
  mkdirSync(dirname(config.outFile), { recursive: true });
  writeFileSync(config.outFile, `${JSON.stringify(report, null, 2)}\n`);
  log(`done in ${seconds.toFixed(0)} s; wrote ${config.outFile}`);
  if (errors.length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
