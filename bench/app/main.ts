/**
 * An app process: one Nest app of one variant, driven over IPC by the bench process
 * (harness/app-process.ts). Everything timed happens here; the bench process only produces
 * jobs and reads Redis statistics, so every variant runs in the same two-process layout.
 */
import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { FlowFailureService } from 'nestjs-flow-failure';
import type { AppSpec, HandlerSample, Protocol, ReplyEnvelope, RequestEnvelope, RequestKind, Usage, WorkerAction } from '../shared/protocol.js';
import { variantSpec } from '../shared/variants.js';
import { buildBenchApp } from './app-module.js';
import { preciseNow } from './clock.js';
import { Recorder } from './recorder.js';
import { registerTelemetrySdk } from './telemetry-sdk.js';
import { type Tracer, installTracer } from './tracing.js';

type Handlers = { [K in RequestKind]: (body: Protocol[K]['request']) => Promise<Protocol[K]['reply']> };

class AppServer {
  private app?: INestApplicationContext;
  private spec?: AppSpec;
  private recorder = new Recorder('samples');
  private workers: Worker[] = [];
  private workersStarted = false;
  private tracer?: Tracer;
  private stopTelemetry?: () => Promise<void>;

  readonly handlers: Handlers = {
    start: (spec) => this.start(spec),
    workers: ({ action }) => this.workersDo(action),
    status: async () => this.recorder.status(),
    usage: ({ gc }) => this.usage(gc),
    collect: () => this.collect(),
    idle: async ({ timeoutMs }) => {
      if (this.spec && variantSpec(this.spec.variant).listener === 'flow-failure-module') await this.app?.get(FlowFailureService).whenIdle(timeoutMs);
      return { at: preciseNow() };
    },
    trace: async ({ reset }) => {
      const report = this.tracer?.report();
      if (reset) this.tracer?.reset();
      return report;
    },
    stop: () => this.stop(),
  };

  private async start(spec: AppSpec): Promise<{ startedAt: number; readyAt: number; cpuUs: number }> {
    if (this.app) throw new Error('already started');
    this.spec = spec;
    this.recorder = new Recorder(spec.record);
    if (spec.trace) this.tracer = installTracer();
    // Before the app: the module makes its instruments as it starts.
    if (variantSpec(spec.variant).telemetry) this.stopTelemetry = registerTelemetrySdk();
    const startedAt = preciseNow();
    const cpu = process.cpuUsage();
    const bench = buildBenchApp(spec, this.recorder);
    this.app = await NestFactory.createApplicationContext(bench.module, { logger: ['error', 'warn'] });
    this.workers = bench.processors.map((processor) => this.app!.get(processor).worker);
    return { startedAt, readyAt: preciseNow(), cpuUs: cpu.user + cpu.system };
  }

  private async workersDo(action: WorkerAction): Promise<{ at: number }> {
    if (action === 'run' && !this.workersStarted) {
      this.workersStarted = true;
      for (const worker of this.workers) {
        worker.on('completed', () => this.recorder.completed++);
        worker.on('failed', (job) => {
          if (job?.finishedOn) this.recorder.failed++;
        });
        worker.run().catch((error: unknown) => console.error(`Worker ${worker.name} stopped: ${String(error)}`));
      }
    } else if (action === 'pause') {
      await Promise.all(this.workers.map((worker) => worker.pause()));
    } else if (action === 'resume') {
      await Promise.all(this.workers.map((worker) => worker.resume()));
    }
    return { at: preciseNow() };
  }

  private async usage(gc: boolean): Promise<Usage> {
    if (gc) await collectGarbage();
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    return {
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
    };
  }

  /** The samples, with `finishedOn` looked up for listeners that only got a job id (outside the timed path). */
  private async collect(): Promise<{ samples: HandlerSample[] }> {
    const spec = this.spec;
    if (!spec) throw new Error('not started');
    const samples = this.recorder.allSamples();
    const missing = samples.filter((sample) => sample.finishedOn === undefined);
    if (missing.length > 0) {
      const redis = new Redis(spec.redisUrl);
      try {
        for (let i = 0; i < missing.length; i += 1000) {
          const chunk = missing.slice(i, i + 1000);
          const pipeline = redis.pipeline();
          for (const sample of chunk) pipeline.hget(`${spec.prefix}:${sample.queueName}:${sample.jobId}`, 'finishedOn');
          const replies = (await pipeline.exec()) ?? [];
          chunk.forEach((sample, j) => {
            const value = replies[j]?.[1];
            if (typeof value === 'string') sample.finishedOn = Number(value);
          });
        }
      } finally {
        await redis.quit();
      }
    }
    return { samples };
  }

  private async stop(): Promise<{ closedAt: number }> {
    await this.app?.close();
    this.app = undefined;
    await this.stopTelemetry?.();
    return { closedAt: preciseNow() };
  }
}

async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the app process with --expose-gc');
  // Twice, with a turn of the event loop between: finalizers freed by the first pass are collected by the second.
  gc();
  await new Promise((resolve) => setTimeout(resolve, 50));
  gc();
}

const server = new AppServer();

process.on('message', (message: RequestEnvelope) => {
  const handler = server.handlers[message.kind] as (body: unknown) => Promise<unknown>;
  handler(message.body).then(
    (body) => reply({ id: message.id, ok: true, body }, message.kind === 'stop'),
    (error: unknown) => reply({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, false),
  );
});

/** After 'stop' the process exits, which is also when --cpu-prof writes its profile. */
function reply(envelope: ReplyEnvelope, exitAfter: boolean): void {
  process.send?.(envelope, () => {
    if (exitAfter) process.exit(0);
  });
}

process.on('disconnect', () => process.exit(1)); // the bench process died: do not linger
