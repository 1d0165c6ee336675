import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FlowProducer, type Job, Worker } from 'bullmq';
import { FlowFailureModule, FlowFailureService } from '../../lib/index.js';
import { CapturingLogger, EventLog, type JobBehaviour, recordingHandlers, runBehaviour, uniquePrefix, waitUntil } from '../support/harness.js';
import { type OwnRedisServer, startRedisServer } from '../support/redis-server.mjs';

const prefix = uniquePrefix('redis-restart');

/** Options from a factory, as with ConfigService. */
@Injectable()
class RedisSettings {
  static port = 0;
  readonly port = RedisSettings.port;
}

@Module({ providers: [RedisSettings], exports: [RedisSettings] })
class SettingsModule {}

describe('Redis restarting under a running app (forRootAsync)', () => {
  let server: OwnRedisServer;
  let app: Awaited<ReturnType<typeof NestFactory.createApplicationContext>>;
  let worker: Worker;
  let flows: FlowProducer;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    server = await startRedisServer({ appendOnly: true });
    @Module({
      imports: [
        SettingsModule,
        FlowFailureModule.forRootAsync({
          imports: [SettingsModule],
          inject: [RedisSettings],
          useFactory: (s: RedisSettings) => ({ connection: { host: '127.0.0.1', port: s.port }, prefix, queues: ['jobs'], shutdownTimeoutMs: 500 }),
        }),
      ],
      providers: [EventLog, recordingHandlers({ child: 'jobs' })],
    })
    class AppModule {}
    RedisSettings.port = server.port;
    app = await NestFactory.createApplicationContext(AppModule, { logger });
    const connection = { host: '127.0.0.1', port: server.port };
    worker = new Worker('jobs', (job: Job<JobBehaviour>) => runBehaviour(job), { connection, prefix });
    flows = new FlowProducer({ connection, prefix });
  });

  afterAll(async () => {
    await app?.close();
    await worker?.close();
    await flows?.close();
    await server?.stop();
  });

  async function failChild(): Promise<string> {
    const flow = await flows.add({ name: 'p', queueName: 'jobs', children: [{ name: 'c', queueName: 'jobs', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } }] });
    return flow.children?.[0].job.id as string;
  }

  test('reconnects, logs the outage with host and port, and delivers what fails afterwards', async () => {
    const log = app.get(EventLog);
    const before = await failChild();
    await waitUntil('the first failure', () => log.of('child').some((e) => e.jobId === before));

    await server.restart();
    const after = await failChild();
    await waitUntil('the failure after the restart', () => log.of('child').some((e) => e.jobId === after), 30_000);
    await app.get(FlowFailureService).whenIdle();
    expect(log.of('child').map((e) => e.jobId).sort()).toEqual([before, after].sort());
    expect(logger.has('warn', new RegExp(`Redis 127\\.0\\.0\\.1:${server.port} .*reconnecting`))).toBe(true);
    expect(logger.has('log', new RegExp(`Redis 127\\.0\\.0\\.1:${server.port} .*is back`))).toBe(true);
  });

  test('app.close() returns when Redis is gone', async () => {
    await worker.close();
    await flows.close();
    await server.stop();
    await app.close(); // bounded by shutdownTimeoutMs at each step, not by Redis coming back
  });
});
