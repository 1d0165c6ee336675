import { describe, expect, test } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import { FlowFailureConfigError } from '../../lib/index.js';
import { resolveConfig } from '../support/internals.js';

describe('resolveConfig', () => {
  test('fills in the documented defaults', () => {
    expect(resolveConfig()).toEqual({
      connection: { kind: 'options', options: { host: '127.0.0.1', port: 6379 } },
      prefix: 'bull',
      queues: [],
      consumerGroup: 'flow-failure',
      handlerAttempts: 5,
      handlerBackoffMs: 1000,
      handlerTimeoutMs: 60_000,
      dedupTtlMs: 7 * 24 * 3600 * 1000,
      leaseMs: 30_000,
      sources: ['worker', 'stream'],
      workerReservations: true,
      sweepIntervalMs: 30_000,
      concurrency: 50,
      shutdownTimeoutMs: 10_000,
      settledTimeoutMs: 600_000,
      deadLetterTtlMs: 30 * 24 * 3600 * 1000,
    });
  });

  test("takes connection and prefix from BullModule.forRoot() unless given", () => {
    const bull = { connection: { host: 'redis', port: 6380 }, prefix: '{shop}' };
    const inherited = { kind: 'options', options: bull.connection };
    expect(resolveConfig({}, bull)).toMatchObject({ prefix: '{shop}', connection: inherited });
    expect(resolveConfig({ prefix: 'mine' }, bull)).toMatchObject({ prefix: 'mine', connection: inherited });
  });

  test('tells a Cluster, cluster options and a Redis client apart, by shape (a bullmq may bring its own ioredis)', () => {
    const cluster = new Cluster([7000], { lazyConnect: true });
    const redis = new Redis({ lazyConnect: true });
    expect(resolveConfig({ connection: cluster }).connection).toEqual({ kind: 'cluster-client', client: cluster });
    expect(resolveConfig({}, { connection: cluster }).connection).toEqual({ kind: 'cluster-client', client: cluster });
    expect(resolveConfig({ connection: redis }).connection).toEqual({ kind: 'client', client: redis });
    expect(resolveConfig({ connection: { startupNodes: [{ host: 'a', port: 7000 }], scaleReads: 'slave' } }).connection).toEqual({
      kind: 'cluster-options',
      nodes: [{ host: 'a', port: 7000 }],
      options: { scaleReads: 'slave' },
    });
  });

  test.each([
    ['redis://localhost:6379', /connection: it is neither an ioredis Redis or Cluster nor an object of connection options, got "redis:\/\/localhost:6379"/],
    [[{ host: 'a' }], /connection: it is neither .*, got an array/],
    [{ startupNodes: [] }, /connection: startupNodes must be a non-empty array/],
    [{ url: 6379 }, /connection: url must be a string/],
    [{ connect() {}, sendCommand() {} }, /connection: it is a client object but not one of ioredis/],
  ])('rejects the connection %j, never replacing it by a default', (connection, message) => {
    expect(() => resolveConfig({ connection } as never)).toThrow(FlowFailureConfigError);
    expect(() => resolveConfig({ connection } as never)).toThrow(message);
  });

  test('names BullModule.forRoot() when the connection it cannot use came from there', () => {
    expect(() => resolveConfig({}, { connection: 'redis://x' as never })).toThrow(/connection: \(from BullModule\.forRoot\(\)\) it is neither/);
  });

  test('the Worker source alone keeps the sweep; with the stream, the sweep may be off', () => {
    expect(resolveConfig({ sources: ['worker'] }).sweepIntervalMs).toBe(30_000);
    expect(resolveConfig({ sources: ['worker', 'stream'], sweepIntervalMs: 0 }).sweepIntervalMs).toBe(0);
    expect(resolveConfig({ sources: ['stream'], sweepIntervalMs: 0 }).sweepIntervalMs).toBe(0);
  });

  test.each([
    [{ handlerAttempt: 3 }, /unknown option "handlerAttempt"/],
    [{ handlerAttempts: 0 }, /handlerAttempts must be a whole number of at least 1/],
    [{ sweepIntervalMs: -1 }, /sweepIntervalMs must be a whole number of at least 0/],
    [{ queues: ['a:b'] }, /queues: "a:b" is not a queue name/],
    [{ prefix: '' }, /prefix must be a non-empty string/],
    [{ sources: ['sweep'] }, /sources must be an array of 'worker' and 'stream'/],
    [{ workerReservations: 'no' }, /workerReservations must be true or false, got "no"/],
    [{ handlerTimeoutMs: 0 }, /handlerTimeoutMs must be a whole number of at least 1/],
    [{ leaseMs: 10_000, dedupTtlMs: 15_000 }, /dedupTtlMs \(15000\) must be at least twice leaseMs \(10000\)/],
    [{ sources: ['worker'], sweepIntervalMs: 0 }, /sources \['worker'\] needs the sweep/],
  ])('rejects %j', (options, message) => {
    expect(() => resolveConfig(options as never)).toThrow(FlowFailureConfigError);
    expect(() => resolveConfig(options as never)).toThrow(message);
  });
});
