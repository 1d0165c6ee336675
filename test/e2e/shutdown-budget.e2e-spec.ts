import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { type HandlerContext, OnChildFailed } from 'nestjs-flow-failure';
import { type TestApp, TestRedis, startApp, uniquePrefix, waitUntil } from '../support/harness.js';
import { RedisKeys } from '../support/internals.js';
import { type OwnRedisServer, startRedisServer } from '../support/redis-server.mjs';

/**
 * app.close() while Redis answers nothing (its process frozen: the connections stay open,
 * as when the network between them drops packets): every step of the shutdown shares one
 * budget, so close() returns within shutdownTimeoutMs and a small constant.
 */
@Injectable()
class SlowHandler {
  /** Runs until its signal tells it to stop. */
  @OnChildFailed('items')
  slow(_event: unknown, { signal }: HandlerContext) {
    return new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
  }
}

describe('closing the app during a network outage', () => {
  const prefix = uniquePrefix('shutdown');
  let server: OwnRedisServer;
  let redis: TestRedis;
  let app: TestApp | undefined;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new TestRedis(prefix, server.url);
  });

  afterAll(async () => {
    server?.resume();
    await app?.close();
    await redis?.close();
    await server?.stop();
  });

  test('returns within shutdownTimeoutMs, with handlers, claims and stream entries in flight', async () => {
    // Only the module in the app: BullMQ's own Workers wait for Redis as they close, which no option of this module bounds.
    const started = await startApp({
      prefix,
      redisUrl: server.url,
      withoutBull: true,
      handlers: [SlowHandler],
      options: { queues: ['items'], connection: { host: '127.0.0.1', port: server.port }, shutdownTimeoutMs: 2000, concurrency: 2 },
    });
    app = started;
    redis.worker('items');
    // Slow handlers hold claims, and more failures wait to be read: each close step has work.
    await redis.flows.addBulk(
      Array.from({ length: 6 }, (_, i) => ({
        name: `batch-${i}`,
        queueName: 'batches',
        children: [{ name: 'item', queueName: 'items', data: { fail: true, sleepMs: i < 3 ? 0 : 500 }, opts: { ignoreDependencyOnFailure: true } }],
      })),
    );
    await waitUntil('handlers running', async () => (await redis.redis.zcard(new RedisKeys(prefix, 'flow-failure').leases)) >= 2);

    server.pause();
    const closing = performance.now();
    await started.close();
    app = undefined;
    const took = performance.now() - closing;
    server.resume();
    expect(took).toBeLessThan(2000 + 1000);
  });
});
