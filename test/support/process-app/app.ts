/**
 * An app instance in a process of its own, for what cannot happen inside Jest's: a SIGKILL
 * in the middle of a handler, a process stalled (SIGSTOP) longer than a lease. It imports
 * only the module and Nest's core (no @nestjs/bullmq): the Workers run in the test.
 *
 * Env: REDIS_URL, or CLUSTER_NODES (JSON `{ host, port }[]` of a Redis Cluster, given as
 * `{ startupNodes }` options), PREFIX, QUEUES (comma-separated), OPTIONS (JSON FlowFailureModuleOptions),
 * HANDLER_MS (each handler run takes this long), HANDLER_THROWS ('true': every run throws),
 * CLOCK_OFFSET_MS (this process's wall clock, Date.now(), runs that much ahead; negative:
 * behind), PARENT_HANDLER (JSON argument of the parent handler's @OnParentFailed; none if unset).
 * Each handler run is recorded in Redis (runsKey) as it starts and as it ends; the module's
 * log lines go to stdout as `[level] message`.
 */
import 'reflect-metadata';
import { type LoggerService, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cluster, type ClusterNode, Redis } from 'ioredis';
import { FlowFailureModule, type FlowFailureEvent } from 'nestjs-flow-failure';
import { handlerClass } from '../handler-class.js';
import { type ProcessRun, runsKey } from './runs.js';

const clockOffsetMs = Number(process.env.CLOCK_OFFSET_MS ?? 0);
if (clockOffsetMs !== 0) {
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + clockOffsetMs;
}

const prefix = process.env.PREFIX as string;
const clusterNodes = process.env.CLUSTER_NODES ? (JSON.parse(process.env.CLUSTER_NODES) as ClusterNode[]) : undefined;
const recorder = clusterNodes ? new Cluster(clusterNodes) : new Redis(process.env.REDIS_URL as string, { maxRetriesPerRequest: null });
const handlerMs = Number(process.env.HANDLER_MS ?? 0);

async function run(handler: string, event: FlowFailureEvent): Promise<void> {
  const record = (phase: ProcessRun['phase']) => {
    const entry: ProcessRun = { handler, jobId: event.jobId, occurrenceId: event.id, pid: process.pid, phase, at: Date.now() };
    return recorder.rpush(runsKey(prefix), JSON.stringify(entry));
  };
  await record('start');
  if (handlerMs > 0) await new Promise((resolve) => setTimeout(resolve, handlerMs));
  await record('end');
  if (process.env.HANDLER_THROWS === 'true') throw new Error(`${handler} failed for ${event.jobId}`);
}

class StdoutLogger implements LoggerService {
  log(message: unknown) { this.print('log', message); }
  error(message: unknown) { this.print('error', message); }
  warn(message: unknown) { this.print('warn', message); }
  private print(level: string, message: unknown) {
    process.stdout.write(`[${level}] ${String(message)}\n`);
  }
}

async function main(): Promise<void> {
  // What the test checks first: this process cannot load @nestjs/bullmq at all.
  // `as string`: compiled where @nestjs/bullmq is not installed, the import must not be resolved.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  const bull = await import('@nestjs/bullmq' as string).then(() => 'installed', (error: { code?: string }) => `absent (${error.code})`);
  process.stdout.write(`@nestjs/bullmq: ${bull}\n`);
  const url = clusterNodes ? undefined : new URL(process.env.REDIS_URL as string);
  @Module({
    imports: [
      FlowFailureModule.forRoot({
        connection: url ? { host: url.hostname, port: Number(url.port) } : { startupNodes: clusterNodes as ClusterNode[] },
        prefix,
        queues: (process.env.QUEUES as string).split(','),
        ...(JSON.parse(process.env.OPTIONS ?? '{}') as object),
      }),
    ],
    providers: [handlerClass({ parent: process.env.PARENT_HANDLER ? (JSON.parse(process.env.PARENT_HANDLER) as object) : true, child: true }, run)],
  })
  class ProcessAppModule {}
  const app = await NestFactory.createApplicationContext(ProcessAppModule, { logger: new StdoutLogger() });
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => void app.close().then(() => recorder.quit()).then(() => process.exit(0)));
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
