import 'reflect-metadata';
import { afterEach, describe, expect, test } from '@jest/globals';
import { Controller, Get, Inject, Injectable, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { FlowFailureModule, OnChildFailed } from 'nestjs-flow-failure';
import { FlowFailureHealthIndicator } from 'nestjs-flow-failure/terminus';
import { CapturingLogger, EventLog, TestRedis, recordingHandlers, uniquePrefix, waitUntil } from '../support/harness.js';
import { type OwnRedisServer, startRedisServer } from '../support/redis-server.mjs';

@Injectable()
class BrokenLedger {
  @OnChildFailed('children')
  book() {
    throw new Error('ledger down');
  }
}

/**
 * The Terminus health indicator in an HTTP app, as a user wires it: up, and down for each
 * reason it names (Redis gone, a stream lagging, dead letters piling up).
 */
describe('FlowFailureHealthIndicator', () => {
  const prefix = uniquePrefix('health');
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  /** An HTTP app with GET /health checking the module with these thresholds; its base URL. */
  const start = async (
    server: OwnRedisServer,
    options: object,
    thresholds: { maxStreamLag?: number; maxDeadLetters?: number },
    handlers: Type[] = [recordingHandlers({ child: 'children' })],
  ) => {
    @Controller('health')
    class HealthController {
      constructor(
        @Inject(HealthCheckService) private readonly health: HealthCheckService,
        @Inject(FlowFailureHealthIndicator) private readonly flowFailure: FlowFailureHealthIndicator,
      ) {}

      @Get()
      @HealthCheck()
      check() {
        return this.health.check([() => this.flowFailure.isHealthy('flow-failure', { ...thresholds, timeoutMs: 300 })]);
      }
    }
    @Module({
      imports: [TerminusModule, FlowFailureModule.forRoot({ connection: { host: '127.0.0.1', port: server.port }, prefix, shutdownTimeoutMs: 1000, ...options })],
      controllers: [HealthController],
      providers: [FlowFailureHealthIndicator, EventLog, ...handlers],
    })
    class HealthAppModule {}
    const app = await NestFactory.create(HealthAppModule, { logger: new CapturingLogger() });
    await app.listen(0, '127.0.0.1');
    cleanup.push(() => app.close());
    return `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}/health`;
  };
  const check = async (url: string) => {
    const reply = await fetch(url);
    return { status: reply.status, body: (await reply.json()) as { status: string; info?: Record<string, unknown>; error?: Record<string, { problems: string[] }> } };
  };
  const ownServer = async () => {
    const server = await startRedisServer();
    cleanup.push(() => server.stop());
    const redis = new TestRedis(prefix, server.url);
    cleanup.push(() => redis.close());
    return { server, redis };
  };

  test('up while Redis answers, streams are read and no dead letter is kept', async () => {
    const { server } = await ownServer();
    const url = await start(server, { queues: ['children'] }, { maxDeadLetters: 0 });
    const { status, body } = await check(url);
    expect(status).toBe(200);
    expect(body.info?.['flow-failure']).toMatchObject({ status: 'up', redis: { up: true }, streams: [{ queueName: 'children', lag: 0 }], deadLetters: 0 });
  });

  test('down when Redis does not answer', async () => {
    const { server } = await ownServer();
    const url = await start(server, { queues: ['children'] }, {});
    server.pause();
    cleanup.push(async () => server.resume());
    const { status, body } = await check(url);
    expect(status).toBe(503);
    expect(body.error?.['flow-failure'].problems).toEqual([`Redis 127.0.0.1:${server.port} does not answer`]);
  });

  test('down when a watched stream lags past maxStreamLag', async () => {
    const { server, redis } = await ownServer();
    // The consumer group exists (an app read the stream once), and now nothing reads it:
    // this app's only source is its (absent) Workers.
    await start(server, { queues: ['children'] }, {});
    await cleanup.pop()?.(); // that app closes
    const url = await start(server, { queues: ['children'], sources: ['worker'], sweepIntervalMs: 10 * 60 * 1000 }, { maxStreamLag: 3 });
    await redis.failChildren(2);
    const { status, body } = await check(url);
    expect(status).toBe(503);
    expect(body.error?.['flow-failure'].problems).toEqual(['the events stream of children lags more than 3 entries']);
  });

  test('down when dead letters pass maxDeadLetters', async () => {
    const { server, redis } = await ownServer();
    const url = await start(server, { queues: ['children'], handlerAttempts: 1 }, { maxDeadLetters: 0 }, [BrokenLedger]);
    expect((await check(url)).status).toBe(200);
    redis.worker('children');
    await redis.failChildren(1);
    await waitUntil('the dead letter counted', async () => (await check(url)).status === 503);
    const { body } = await check(url);
    expect(body.error?.['flow-failure']).toMatchObject({ deadLetters: 1, problems: ['1 dead letters (more than 0)'] });
  });
});
