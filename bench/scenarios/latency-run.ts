import { type CommandCounts, commandDelta, totalCommands, uniquePrefix } from '../harness/bench-redis.js';
import { sendPaced } from '../harness/pacer.js';
import { Producer } from '../harness/producer.js';
import type { Distribution, HandlerSample, Layout, TraceReport } from '../shared/protocol.js';
import { CHILDREN_QUEUE, PARENTS_QUEUE, phaseOf } from '../shared/queues.js';
import { distribution } from '../shared/stats.js';
import { type VariantName, variantSpec } from '../shared/variants.js';
import { type Deployment, type ScenarioContext, appSpec, deploy, rowName, waitForRuns } from './scenario.js';

const TICK_MS = 10;

export interface LatencyResult {
  variant: VariantName;
  layout: Layout;
  /** The variant, with its layout when that is 'service'. */
  name: string;
  description: string;
  /** Failures the measured flows produced (2 per flow). */
  expected: number;
  handled: number;
  missed: number;
  duplicates: number;
  /** finishedOn -> handler start, ms, over parent and child failures. */
  latencyMs: Distribution;
  byKind: { parent: Distribution; child: Distribution };
  /** Redis commands during this variant's measured segments, per failure (producer, Workers and listener). */
  commandsPerFailure: number;
  topCommandsPerFailure: Record<string, number>;
  /** CPU of the app under test during the measured segments, per failure, µs (its Workers included in the 'workers' layout). */
  appCpuUsPerFailure: number;
  throughput: {
    failures: number;
    handled: number;
    /** Handler runs, duplicates included. */
    runs: number;
    /** Failures handled per second, from the Workers' resume to the last handler start. */
    perSecond: number;
    /** Terminal failures the Workers produced per second in that run: the ceiling the listener is measured against. */
    workerFailuresPerSecond: number;
    /** CPU of the app under test from the resume until every failure was handled, per failure, µs (its Workers included in the 'workers' layout). */
    appCpuUsPerFailure: number;
  };
  trace?: TraceReport;
}

/**
 * One variant's app process for the latency scenario. The scenario keeps every variant's app
 * alive at once and feeds them in turns (segments), so that a change in the machine's load
 * during the run hits every variant alike instead of whichever ran at that moment.
 */
export class LatencyRun {
  private readonly producer: Producer;
  private commands: CommandCounts = {};
  private cpuUs = 0;
  private measuredFlows = 0;
  private resumedAt = 0;
  private throughputCpuUs = 0;
  private trace?: TraceReport;

  private constructor(
    private readonly context: ScenarioContext,
    readonly variant: VariantName,
    readonly layout: Layout,
    private readonly prefix: string,
    private readonly deployment: Deployment,
  ) {
    this.producer = new Producer(context.redis.url, prefix);
  }

  static async start(context: ScenarioContext, variant: VariantName, layout: Layout): Promise<LatencyRun> {
    const prefix = uniquePrefix('latency', layout === 'workers' ? variant : `${variant}-svc`);
    const deployment = await deploy(context, 'latency', appSpec(context, variant, prefix, { layout }));
    await deployment.workers.request('workers', { action: 'run' });
    return new LatencyRun(context, variant, layout, prefix, deployment);
  }

  get name(): string {
    return rowName(this.variant, this.layout);
  }

  private get app() {
    return this.deployment.app;
  }

  /** Not measured: JIT, connections, the QueueEvents' first XREAD. */
  async warmUp(flows: number, perSecond: number): Promise<void> {
    await sendPaced(flows, perSecond, TICK_MS, (from, count) => this.producer.addFlows('w', from, count));
    await waitForRuns(this.app, 2 * flows, 15_000);
    await this.app.request('trace', { reset: true });
  }

  /** Flows `from` .. `from + flows - 1` at a steady rate; Redis commands and CPU are summed over segments. */
  async segment(from: number, flows: number, perSecond: number): Promise<void> {
    const runsBefore = (await this.app.request('status', {})).runs;
    const redisBefore = await this.context.redis.snapshot();
    const cpuBefore = await this.app.request('usage', { gc: false });
    await sendPaced(flows, perSecond, TICK_MS, (start, count) => this.producer.addFlows('m', from + start, count));
    await waitForRuns(this.app, runsBefore + 2 * flows, 30_000 + 20 * flows);
    const cpuAfter = await this.app.request('usage', { gc: false });
    const redisAfter = await this.context.redis.snapshot();
    for (const [command, calls] of Object.entries(commandDelta(redisBefore.commands, redisAfter.commands))) {
      this.commands[command] = (this.commands[command] ?? 0) + calls;
    }
    this.cpuUs += cpuAfter.cpuUserUs + cpuAfter.cpuSystemUs - cpuBefore.cpuUserUs - cpuBefore.cpuSystemUs;
    this.measuredFlows += flows;
  }

  /** With the Workers paused a backlog is queued; then they resume and the app works at saturation. */
  async throughput(flows: number): Promise<void> {
    this.trace = await this.app.request('trace', { reset: false });
    await this.deployment.workers.request('workers', { action: 'pause' });
    await this.producer.addFlows('t', 0, flows);
    const runsBefore = (await this.app.request('status', {})).runs;
    const cpuBefore = await this.app.request('usage', { gc: false });
    this.resumedAt = (await this.deployment.workers.request('workers', { action: 'resume' })).at;
    await waitForRuns(this.app, runsBefore + 2 * flows, 60_000 + 20 * flows);
    const cpuAfter = await this.app.request('usage', { gc: false });
    this.throughputCpuUs = cpuAfter.cpuUserUs + cpuAfter.cpuSystemUs - cpuBefore.cpuUserUs - cpuBefore.cpuSystemUs;
  }

  async result(throughputFlows: number): Promise<LatencyResult> {
    const { samples } = await this.app.request('collect', {});
    const failures = 2 * this.measuredFlows;
    return {
      variant: this.variant,
      layout: this.layout,
      name: this.name,
      description: variantSpec(this.variant).description,
      ...latencyOf(samples.filter((s) => phaseOf(s.jobId) === 'm'), failures),
      commandsPerFailure: totalCommands(this.commands) / failures,
      topCommandsPerFailure: perFailure(this.commands, failures),
      appCpuUsPerFailure: this.cpuUs / failures,
      throughput: {
        ...throughputOf(samples.filter((s) => phaseOf(s.jobId) === 't'), 2 * throughputFlows, this.resumedAt),
        appCpuUsPerFailure: this.throughputCpuUs / (2 * throughputFlows),
      },
      trace: this.trace,
    };
  }

  async stop(): Promise<void> {
    await this.deployment.stop();
    await this.producer.close();
    await this.context.redis.cleanup(this.prefix);
  }
}

function latencyOf(samples: HandlerSample[], expected: number) {
  const firstRuns = firstRunOfEachJob(samples);
  const latency = (list: HandlerSample[]) =>
    distribution(list.filter((s) => s.finishedOn !== undefined).map((s) => s.at - (s.finishedOn as number)));
  return {
    expected,
    handled: firstRuns.length,
    missed: expected - firstRuns.length,
    duplicates: samples.length - firstRuns.length,
    latencyMs: latency(firstRuns),
    byKind: {
      parent: latency(firstRuns.filter((s) => s.queueName === PARENTS_QUEUE)),
      child: latency(firstRuns.filter((s) => s.queueName === CHILDREN_QUEUE)),
    },
  };
}

function throughputOf(samples: HandlerSample[], failures: number, resumedAt: number): Omit<LatencyResult['throughput'], 'appCpuUsPerFailure'> {
  const firstRuns = firstRunOfEachJob(samples);
  const lastRun = Math.max(...firstRuns.map((s) => s.at));
  const lastFailure = Math.max(...firstRuns.map((s) => s.finishedOn ?? 0));
  return {
    failures,
    handled: firstRuns.length,
    runs: samples.length,
    perSecond: firstRuns.length / ((lastRun - resumedAt) / 1000),
    workerFailuresPerSecond: firstRuns.length / ((lastFailure - resumedAt) / 1000),
  };
}

/** A job's first handler run; later ones are duplicates (a listener without exactly-once). */
function firstRunOfEachJob(samples: HandlerSample[]): HandlerSample[] {
  const seen = new Set<string>();
  return samples.filter((sample) => {
    const key = `${sample.queueName}:${sample.jobId}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function perFailure(commands: CommandCounts, failures: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(commands)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([command, calls]) => [command, Number((calls / failures).toFixed(2))]),
  );
}
