import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FlowProducer } from 'bullmq';
import { FlowFailureModule, FlowFailureService } from '../../lib/index.js';
import { CapturingLogger, EventLog, type TestApp, addFailingChildren, aliveTimers, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { claimStates, heldClaims, moduleKeys } from '../support/internals.js';
import type { OwnRedisServer } from '../support/redis-server.mjs';
import { specResources } from '../support/spec-resources.js';

/** The module's three connections, by the name each gives Redis. */
const CONNECTIONS = ['flow-failure', 'flow-failure-jobs', 'flow-failure-reader'];

/**
 * Redis stopping and starting again under running apps: each test starts a redis-server
 * of its own (with AOF, as production should), the apps on it, and Workers outside them.
 */
describe('Redis restarting under a running app', () => {
  const prefix = uniquePrefix('redis-restart');
  const keys = moduleKeys(prefix);
  const spec = specResources(prefix);

  /** The apps' options reach them from a factory, as with ConfigService. */
  async function asyncApp(server: OwnRedisServer, shutdownTimeoutMs = 500): Promise<TestApp> {
    @Injectable()
    class RedisSettings {
      readonly port = server.port;
    }
    @Module({ providers: [RedisSettings], exports: [RedisSettings] })
    class SettingsModule {}
    @Module({
      imports: [
        SettingsModule,
        FlowFailureModule.forRootAsync({
          imports: [SettingsModule],
          inject: [RedisSettings],
          useFactory: (settings: RedisSettings) => ({ connection: { host: '127.0.0.1', port: settings.port }, prefix, queues: ['parents', 'children'], shutdownTimeoutMs }),
        }),
      ],
      providers: [EventLog, recordingHandlers({ child: 'children' })],
    })
    class AppModule {}
    const logger = new CapturingLogger();
    const app = await NestFactory.createApplicationContext(AppModule, { logger });
    let closing: Promise<void> | undefined;
    const started: TestApp = { app, log: app.get(EventLog), logger, flowFailure: app.get(FlowFailureService), close: () => (closing ??= app.close()) };
    spec.apps.push(started);
    return started;
  }

  /** Workers that fail the jobs, and a producer, on the test's own server; `close` them before stopping it for good. */
  function failingChildren(server: OwnRedisServer) {
    const connection = { host: '127.0.0.1', port: server.port };
    const workers = ['parents', 'children'].map((queue) => spec.worker(queue, undefined, { connection }));
    const flows = spec.closeAfter(new FlowProducer({ connection, prefix }));
    // They see the outages too; what matters here is what the module logs.
    workers.forEach((worker) => worker.on('error', () => undefined));
    flows.on('error', () => undefined);
    return {
      failChild: async () => (await addFailingChildren(flows))[0],
      close: () => Promise.all([...workers, flows].map((client) => client.close())),
    };
  }

  const warnings = (app: TestApp, pattern: RegExp) => app.logger.lines.filter((line) => line.level === 'warn' && pattern.test(line.message));

  test('each connection logs the outage once with host and port, and once that it is back; what fails afterwards is delivered', async () => {
    const server = await spec.server({ appendOnly: true });
    const app = await asyncApp(server);
    const { failChild } = failingChildren(server);
    const before = await failChild();
    await waitUntil('the first failure', () => app.log.of('child').some((e) => e.jobId === before));

    // Down for 1.5 s: each connection tries to reconnect several times meanwhile.
    await server.restart(1500);
    const after = await failChild();
    await waitUntil('the failure after the restart', () => app.log.of('child').some((e) => e.jobId === after), 30_000);
    await settle(app);
    expect(app.log.of('child').map((e) => e.jobId).sort()).toEqual([before, after].sort());
    for (const name of CONNECTIONS) {
      const address = `Redis 127\\.0\\.0\\.1:${server.port} \\(${name}\\)`;
      expect([name, app.logger.lines.filter((l) => new RegExp(`${address}: .*reconnecting`).test(l.message)).map((l) => l.level)]).toEqual([name, ['warn']]);
      expect([name, app.logger.lines.filter((l) => new RegExp(`${address} is back`).test(l.message)).length]).toEqual([name, 1]);
    }
  });

  // The instance that is back first must not take the claim over. Its take-over (ClaimTakeover)
  // may have sent EXPIRED during the outage, answered the moment the connection is back and
  // before the holder has renewed; every claim it then sends (the take-over's, or a stream
  // read's of an entry it took with XAUTOCLAIM) is judged in Redis by the claim rule, which
  // takes no expired lease while LeaseTrust says the holders may be catching up.
  test('a claim whose lease ran out during an outage is renewed by its live holder, not taken over by another instance that is back first', async () => {
    const server = await spec.server({ appendOnly: true });
    const { failChild } = failingChildren(server);
    // 1 s leases; the outage below lasts twice as long. The holder's connections retry every
    // 900 ms, the other's every 50 ms: the other is back about 600 ms before the holder (more
    // than one of its reaper rounds, less than a lease), and finds the claim's lease run out.
    const options = (retryMs: number) => ({
      connection: { host: '127.0.0.1', port: server.port, retryStrategy: () => retryMs },
      queues: ['parents', 'children'],
      leaseMs: 1000,
      sweepIntervalMs: 0,
    });
    const handlers = [recordingHandlers({ child: 'children' })];
    const holder = await spec.start({ withoutBull: true, handlers, options: options(900) });
    holder.log.hold();
    const childId = await failChild();
    await waitUntil('the holder runs the handler', () => holder.log.running === 1);
    const other = await spec.start({ withoutBull: true, handlers, options: options(50) });
    other.log.hold();
    const redis = spec.client(server.url);
    const [claim] = await heldClaims(redis, keys);
    const leaseBefore = Number(await redis.zscore(keys.leases, claim));

    await server.restart(2000);
    // The holder renews it once its connection is back...
    await waitUntil('the lease renewed', async () => Number(await redis.zscore(keys.leases, claim)) > leaseBefore + 2000);
    // ...and runs on past the end of the other's catch-up window (4 s after it was back: more than the lease).
    await new Promise((resolve) => setTimeout(resolve, 4500));
    [holder, other].forEach((app) => app.log.release());
    await waitUntil('the handler completed', () => holder.log.runs.length === 1);
    await settle(holder, other);

    expect([holder, other].map((app) => app.log.started.map((run) => run.event.jobId))).toEqual([[childId], []]);
    expect([holder, other].flatMap((app) => warnings(app, /Took over|Lost the claim/))).toEqual([]);
    expect(await claimStates(redis, keys, [claim])).toEqual(['done']);
    expect(await heldClaims(redis, keys)).toEqual([]);
  });

  /**
   * A timer re-armed for ever keeps the process from exiting: Jest's, or a pod's after
   * SIGTERM. BullMQ's Worker of the dead letters may keep one bounded timer a little longer:
   * the watchdog of the blocking read it was in, which Redis never answered (drainDelay + 1 s).
   */
  const noTimerLeft = (before: number) => waitUntil('no timer of the closed app is left', () => aliveTimers() <= before, 10_000);

  test('app.close() returns within shutdownTimeoutMs (and a little) when Redis is gone, and leaves no timer running', async () => {
    const server = await spec.server();
    const timers = aliveTimers();
    const app = await asyncApp(server, 1000);
    await server.stop();
    const closing = Date.now();
    await app.close();
    expect(Date.now() - closing).toBeLessThanOrEqual(1000 + 500);
    await noTimerLeft(timers);
  });

  // Every step of close() shares one budget: the handler's wait and the steps that need Redis.
  test('app.close() returns within shutdownTimeoutMs (and a little) when Redis is gone with a handler in flight, and leaves no timer running', async () => {
    const server = await spec.server();
    const timers = aliveTimers();
    const app = await asyncApp(server, 1000);
    const producer = failingChildren(server);
    app.log.hold();
    try {
      await producer.failChild();
      await waitUntil('the handler runs', () => app.log.running === 1);
      await producer.close();
      await server.stop();
      const closing = Date.now();
      await app.close();
      expect(Date.now() - closing).toBeLessThanOrEqual(1000 + 500);
      await noTimerLeft(timers);
    } finally {
      app.log.release();
    }
  });
});
