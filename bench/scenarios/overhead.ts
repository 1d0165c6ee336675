import { selectVariants } from '../config.js';
import { type CommandCounts, commandDelta, totalCommands, uniquePrefix } from '../harness/bench-redis.js';
import { type LagReport, StreamLagPoller } from '../harness/lag-poller.js';
import { sendPaced } from '../harness/pacer.js';
import { Producer } from '../harness/producer.js';
import { format } from '../harness/table.js';
import { waitFor } from '../harness/wait.js';
import { CHILDREN_QUEUE, MODULE_CONSUMER_GROUP, PARENTS_QUEUE, WATCHED_QUEUES } from '../shared/queues.js';
import { BASELINE, type VariantName, variantSpec } from '../shared/variants.js';
import { type Scenario, type ScenarioContext, type TargetCheck, appSpec, launchApp, ratio } from './scenario.js';

const TICK_MS = 100;

interface OverheadResult {
  variant: VariantName;
  description: string;
  jobs: number;
  handled: number;
  seconds: number;
  /** App process CPU (Workers + listener), seconds. */
  appCpuSeconds: number;
  redisCpuSeconds: number;
  /** Every Redis command of the run (producer, Workers, listener), per job; the lag poller's own are taken out. */
  commandsPerJob: number;
  /** The commands (by name) of this run minus those of the run without any listener. */
  extraCommands?: CommandCounts;
  lag: LagReport;
}

/**
 * A busy queue: successful jobs at the issue's rate (50,000 a minute) with a few fail-parent
 * flows among them, on watched queues. What does watching cost? CPU of the app process, Redis
 * commands per job, and how far the stream reader trails, each beside a run with no listener.
 */
export const overheadScenario: Scenario = async (context) => {
  const results: Measured[] = [];
  for (const variant of selectVariants(context.config, context.config.overhead.variants)) {
    context.log(`overhead: ${variant}`);
    results.push(await measure(context, variant));
  }
  const none = results.find((r) => r.variant === 'none');
  const base = results.find((r) => r.variant === BASELINE);
  const commandsOf = (r: OverheadResult) => r.commandsPerJob * r.jobs;
  for (const r of results) {
    if (none && r !== none) r.extraCommands = commandDelta(none.commandTotals, r.commandTotals);
  }
  const extraPerJob = (r: OverheadResult) => (none ? (commandsOf(r) - commandsOf(none)) / r.jobs : undefined);
  const extraCpu = (r: OverheadResult) => (none ? r.appCpuSeconds - none.appCpuSeconds : undefined);
  const { successes, successKind, failures, jobsPerMinute } = context.config.overhead;
  const targets: TargetCheck[] = results
    .filter((r) => r.lag.measured)
    .map((r) => ({
      target: `stream reader lag < 1 s at ${format.int(jobsPerMinute)} jobs/min`,
      variant: r.variant,
      measured: `max ${format.int(r.lag.lagMs.max)} ms`,
      ok: r.lag.lagMs.max < 1000,
    }));
  return {
    scenario: 'overhead',
    targets,
    data: { successes, successKind, failures, jobsPerMinute, results: results.map(({ commandTotals: _omit, ...rest }) => rest) },
    tables: [
      {
        title:
          `Read overhead on a busy queue: ${format.int(successes)} successful jobs` +
          `${successKind === 'flows' ? ` (in ${format.int(successes / 2)} flows of a parent and a child)` : ''}` +
          ` + ${failures} failures at ${format.int(jobsPerMinute)} jobs/min`,
        columns: ['variant', 'handled', 'app CPU s', 'extra CPU s', 'CPU ratio', 'Redis CPU s', 'cmds/job', 'extra cmds/job', 'lag p99 ms', 'lag max ms', 'max behind'],
        rows: results.map((r) => [
          r.variant,
          format.int(r.handled),
          format.fixed(r.appCpuSeconds, 2),
          format.fixed(extraCpu(r), 2),
          format.ratio(ratio(r.appCpuSeconds, base?.appCpuSeconds)),
          format.fixed(r.redisCpuSeconds, 2),
          format.fixed(r.commandsPerJob, 2),
          format.fixed(extraPerJob(r), 2),
          r.lag.measured ? format.int(r.lag.lagMs.p99) : '-',
          r.lag.measured ? format.int(r.lag.lagMs.max) : '-',
          r.lag.measured ? format.int(r.lag.maxEntriesBehind) : '-',
        ]),
        notes: [
          "extra = this row minus 'none' (the same app and Workers, no listener). CPU ratio = app CPU / raw QueueEvents' app CPU.",
          'lag: age of the oldest events-stream entry the module\'s consumer group had not acknowledged, sampled every 100 ms (target < 1 s).',
        ],
      },
    ],
  };
};

interface Measured extends OverheadResult {
  /** Raw command counts of the run, for the per-command difference to 'none'. */
  commandTotals: CommandCounts;
}

async function measure(context: ScenarioContext, variant: VariantName): Promise<Measured> {
  const { successes, successKind, failures, jobsPerMinute } = context.config.overhead;
  const flows = failures / 2;
  const jobs = successes + failures;
  const prefix = uniquePrefix('overhead', variant);
  const producer = new Producer(context.redis.url, prefix);
  const { app } = await launchApp(context, 'overhead', appSpec(context, variant, prefix, { record: 'count' }));
  const poller = new StreamLagPoller(context.redis.admin, WATCHED_QUEUES.map((q) => `${prefix}:${q}:events`), MODULE_CONSUMER_GROUP);
  const expectedRuns = variantSpec(variant).listener === 'none' ? 0 : failures;
  try {
    await producer.ready();
    await app.request('workers', { action: 'run' });
    const redisBefore = await context.redis.snapshot();
    const usageBefore = await app.request('usage', { gc: false });
    const began = Date.now();
    poller.start();

    const perSecond = jobsPerMinute / 60;
    const seconds = successes / perSecond;
    await Promise.all([
      // Successful jobs, half on each queue, one addBulk per queue per tick (or flows of a parent and a child).
      successKind === 'flows'
        ? sendPaced(successes / 2, perSecond / 2, TICK_MS, (_from, count) => producer.addSuccessfulFlows(count))
        : sendPaced(successes, perSecond, TICK_MS, async (_from, count) => {
            const half = Math.floor(count / 2);
            await Promise.all([producer.addSuccesses(PARENTS_QUEUE, count - half), producer.addSuccesses(CHILDREN_QUEUE, half)]);
          }),
      // The failures, spread over the same time.
      sendPaced(flows, flows / seconds, TICK_MS, (from, count) => producer.addFlows('o', from, count)),
    ]);
    await waitFor(
      async () => {
        const status = await app.request('status', {});
        return status.completed >= successes && status.failed >= failures && status.runs >= expectedRuns;
      },
      60_000,
      50,
    );
    // Whatever the module still reads after the Workers are done belongs to this run too.
    await waitFor(() => pollerCaughtUp(poller), 30_000, 100);
    // Stopped before the last reading, so that every command it sent is in ownCommands.
    const lag = await poller.stop();
    const usageAfter = await app.request('usage', { gc: false });
    const redisAfter = await context.redis.snapshot();
    const elapsed = (Date.now() - began) / 1000;
    const status = await app.request('status', {});

    const commandTotals = withoutOwn(commandDelta(redisBefore.commands, redisAfter.commands), poller.ownCommands);
    return {
      variant,
      description: variantSpec(variant).description,
      jobs,
      handled: status.runs,
      seconds: elapsed,
      appCpuSeconds: (usageAfter.cpuUserUs + usageAfter.cpuSystemUs - usageBefore.cpuUserUs - usageBefore.cpuSystemUs) / 1e6,
      redisCpuSeconds: redisAfter.cpuSeconds - redisBefore.cpuSeconds,
      commandsPerJob: totalCommands(commandTotals) / jobs,
      commandTotals,
      lag,
    };
  } finally {
    await poller.stop();
    await app.stop().catch(() => app.kill());
    await producer.close();
    await context.redis.cleanup(prefix);
  }
}

/** The poller's latest view: nothing unread or pending (always true when there is no group). */
function pollerCaughtUp(poller: StreamLagPoller): boolean {
  return poller.latest === undefined || (poller.latest.lagMs === 0 && poller.latest.entriesBehind === 0);
}

function withoutOwn(counts: CommandCounts, own: CommandCounts): CommandCounts {
  const result: CommandCounts = { ...counts };
  for (const [command, calls] of Object.entries(own)) {
    result[command] = (result[command] ?? 0) - calls;
    if (result[command] === 0) delete result[command];
  }
  return result;
}
