import 'reflect-metadata';
import { afterAll, describe, expect, test } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  FlowFailureConfigError,
  FlowFailureModule,
  OnChildFailed,
  OnParentFailed,
  RedisUnreachableError,
  type FlowFailureModuleOptions,
} from '../../lib/index.js';
import { holdPort } from '../support/redis-server.mjs';
import { CapturingLogger, TestRedis, redisConnection, uniquePrefix } from '../support/harness.js';

const prefix = uniquePrefix('bad-input');

/** Starts an app with one handler class and returns what `init()` threw (or undefined). */
async function initError(handlers: (new (...args: never[]) => unknown)[], options: FlowFailureModuleOptions = {}): Promise<unknown> {
  @Module({ imports: [FlowFailureModule.forRoot({ connection: redisConnection(), prefix, ...options })], providers: handlers })
  class AppModule {}
  const app = await NestFactory.createApplicationContext(AppModule, { logger: new CapturingLogger(), abortOnError: false, preview: false }).catch(
    (error: unknown) => error,
  );
  if (!(app && typeof app === 'object' && 'close' in app)) return app;
  await (app as { close(): Promise<void> }).close();
  return undefined;
}

describe('bad input fails at start-up with a clear message', () => {
  afterAll(async () => {
    const redis = new TestRedis(prefix);
    await redis.close();
  });

  test('an empty queue name names the class and the method', async () => {
    @Injectable()
    class EmptyQueue {
      @OnParentFailed('')
      handle() {}
    }
    const error = await initError([EmptyQueue]);
    expect(error).toBeInstanceOf(FlowFailureConfigError);
    expect((error as Error).message).toMatch(/@OnParentFailed on EmptyQueue\.handle: queue name must be a non-empty string/);
  });

  test('a queue name that is not a string', async () => {
    @Injectable()
    class NumberQueue {
      @OnChildFailed({ queueName: [42 as unknown as string] })
      handle() {}
    }
    const error = await initError([NumberQueue]);
    expect((error as Error).message).toMatch(/@OnChildFailed on NumberQueue\.handle: queue name must be a non-empty string, got number 42/);
  });

  test('an unknown decorator option', async () => {
    @Injectable()
    class Typo {
      @OnParentFailed({ queue: 'orders' } as never)
      handle() {}
    }
    const error = await initError([Typo]);
    expect((error as Error).message).toMatch(/@OnParentFailed on Typo\.handle: unknown option "queue"/);
  });

  test('an option of the other decorator', async () => {
    @Injectable()
    class WrongOption {
      @OnChildFailed({ causedByChild: true } as never)
      handle() {}
    }
    const error = await initError([WrongOption]);
    expect((error as Error).message).toMatch(/@OnChildFailed on WrongOption\.handle: unknown option "causedByChild"/);
  });

  test('an unknown module option', async () => {
    const error = await initError([], { handlerAttempt: 3 } as never);
    expect(error).toBeInstanceOf(FlowFailureConfigError);
    expect((error as Error).message).toMatch(/unknown option "handlerAttempt"/);
  });

  test('Redis unreachable at start names host and port', async () => {
    const { port, release } = await holdPort();
    const error = await initError([], { connection: { host: '127.0.0.1', port } }).finally(release);
    expect(error).toBeInstanceOf(RedisUnreachableError);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
  });
});
