/**
 * One app instance of the chaos runs, as its own process: `@nestjs/bullmq` processors for
 * a three-level flow and handlers that record every completed run in Redis. The test
 * SIGKILLs these processes at random and starts new ones.
 *
 * Env: REDIS_URL, CHAOS_PREFIX, CHAOS_QUEUES and CHAOS_SOURCES (comma-separated; empty: the default sources).
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { type FlowFailureEvent, type LiveSource } from 'nestjs-flow-failure';
import { handlerClass } from '../support/handler-class.js';
import { REDIS_URL, testAppModule } from '../support/harness.js';
import { CHAOS_MODULE_OPTIONS, CHAOS_WORKER_OPTIONS, runsKey } from './chaos-settings.js';

const prefix = process.env.CHAOS_PREFIX as string;
const queues = (process.env.CHAOS_QUEUES as string).split(',');
const sources = process.env.CHAOS_SOURCES ? (process.env.CHAOS_SOURCES.split(',') as LiveSource[]) : undefined;
const recorder = new Redis(REDIS_URL, { maxRetriesPerRequest: null });

/**
 * A run is recorded under a token of its own, so a command that ioredis resends after a
 * Redis restart cannot count twice; two tokens for one (handler, occurrence) are two runs.
 * With it: this process and when the run started, so that the tally can tell whether a kill
 * of this process fell inside the run.
 */
async function record(handler: string, event: FlowFailureEvent): Promise<void> {
  const startedAt = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 150)); // handlers take time: kills land mid-run
  const token = randomBytes(6).toString('hex');
  await recorder.hset(runsKey(prefix), `${handler}|${event.queueName}:${event.jobId}|${event.id}|${token}`, `${process.pid}|${event.source}|${startedAt}`);
}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(
    testAppModule({ prefix, processors: queues, handlers: [handlerClass({ parent: true, child: true }, record)], workerOptions: CHAOS_WORKER_OPTIONS, options: { ...CHAOS_MODULE_OPTIONS, sources } }),
    { logger: ['error', 'warn'] },
  );
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => void app.close().then(() => recorder.quit()).then(() => process.exit(0)));
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
