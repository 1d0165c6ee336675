import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions, Transport } from '@nestjs/microservices';
import { type Job, Worker } from 'bullmq';
import { FlowFailureService } from '../../lib/index.js';
import { CapturingLogger, EventLog, type JobBehaviour, TestRedis, redisConnection, testAppModule, uniquePrefix, waitUntil, recordingHandlers } from '../support/harness.js';

const prefix = uniquePrefix('app-kinds');

type Start = (module: ReturnType<typeof testAppModule>) => Promise<INestApplicationContext>;

const KINDS: [string, string, boolean, Start][] = [
  ['an HTTP app', 'http-jobs', false, async (module) => {
    const app = await NestFactory.create(module, { logger: new CapturingLogger() });
    await app.listen(0, '127.0.0.1');
    return app;
  }],
  ['a microservice (Redis transport)', 'micro-jobs', false, async (module) => {
    const app = await NestFactory.createMicroservice<MicroserviceOptions>(module, {
      transport: Transport.REDIS,
      options: redisConnection(),
      logger: new CapturingLogger(),
    });
    await app.listen();
    return app;
  }],
  ['an application context without @nestjs/bullmq', 'context-jobs', true, (module) =>
    NestFactory.createApplicationContext(module, { logger: new CapturingLogger() })],
];

describe.each(KINDS)('in %s', (_kind, queue, withoutBull, start) => {
  let redis: TestRedis;
  let app: INestApplicationContext;
  let worker: Worker | undefined;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    app = await start(
      testAppModule({ prefix, processors: withoutBull ? [] : [queue], handlers: [recordingHandlers({ child: true })], withoutBull, options: withoutBull ? { queues: [queue] } : {} }),
    );
    if (withoutBull) {
      // Workers in another deployment: here, a plain BullMQ Worker next to the app.
      const fail = async (job: Job<JobBehaviour>) => {
        if (job.data.fail) throw new Error('nope');
      };
      worker = new Worker(queue, fail, { connection: redisConnection(), prefix });
    }
  });

  afterAll(async () => {
    await app?.close();
    await worker?.close();
    await redis?.close();
  });

  test('delivers a child failure once', async () => {
    const flow = await redis.flows.add({
      name: 'parent',
      queueName: queue,
      children: [{ name: 'child', queueName: queue, data: { fail: true }, opts: { ignoreDependencyOnFailure: true } }],
    });
    const log = app.get(EventLog);
    await waitUntil('the child event', () => log.runs.length === 1);
    await waitUntil('the parent completes', async () => (await flow.job.getState()) === 'completed');
    await app.get(FlowFailureService).whenIdle();
    expect(log.of('child').map((e) => e.jobId)).toEqual([flow.children?.[0].job.id]);
  });
});
