import { afterAll, afterEach, beforeAll } from '@jest/globals';
import { type Processor, Worker, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { type AppSpec, type TestApp, TestRedis, redisConnection, runBehaviour, startApp } from './harness.js';
import { type OwnRedisServer, startRedisServer } from './redis-server.mjs';

/** What is closed after a test: BullMQ's Workers and producers also disconnect, at the least. */
interface Closable {
  close(): Promise<unknown>;
  disconnect?(): unknown;
}

/**
 * Closes, or after 5 s disconnects: a BullMQ Worker or producer whose Redis a test stopped
 * waits for it to come back before it closes, and must not hold up the next test.
 */
async function closeOrDisconnect(thing: Closable): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([
    thing.close().then(() => true, () => true),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 5000))),
  ]);
  clearTimeout(timer);
  if (!closed) await thing.disconnect?.();
}

/**
 * What the tests of one spec file start: a TestRedis for the file, and the apps, plain
 * Workers and redis-servers of each test, closed (and the prefix's keys deleted) after it,
 * whether the test passed, failed or timed out. An app or server whose start finishes
 * after its test has ended (a test that timed out goes on running) is closed at once.
 */
export function specResources(prefix: string) {
  /** Which test is running: what starts in one test and resolves in a later one is closed, not kept. */
  let generation = 0;
  const keep = async <T extends { close(): Promise<void> } | OwnRedisServer>(started: T, list: T[], from: number): Promise<T> => {
    if (from === generation) {
      list.push(started);
      return started;
    }
    await ('stop' in started ? started.stop() : started.close());
    throw new Error('the test ended before this finished starting; closed it');
  };
  const resources = {
    redis: undefined as unknown as TestRedis,
    apps: [] as TestApp[],
    workers: [] as Worker[],
    servers: [] as OwnRedisServer[],
    others: [] as Closable[],
    /** An app on this file's prefix, closed after the test. */
    async start(app: Omit<AppSpec, 'prefix'> & { prefix?: string }): Promise<TestApp> {
      const from = generation;
      return keep(await startApp({ prefix, ...app }), resources.apps, from);
    },
    /** A plain BullMQ Worker outside the apps (a split deployment), closed after the test. */
    worker(queue: string, processor: Processor = runBehaviour, options: Partial<WorkerOptions> = {}): Worker {
      const worker = new Worker(queue, processor, { connection: redisConnection(), prefix, ...options });
      resources.workers.push(worker);
      return worker;
    },
    /** Anything else the test opens (a FlowProducer, a connection), closed after the test before the servers stop. */
    closeAfter<T extends Closable>(thing: T): T {
      resources.others.push(thing);
      return thing;
    },
    /** A Redis client of the test's own (for a server of its own), closed after the test. */
    client(url: string): Redis {
      const client = new Redis(url, { maxRetriesPerRequest: null });
      resources.others.push({ close: () => client.quit().catch(() => client.disconnect()) });
      return client;
    },
    /** A redis-server of the test's own (to restart or stop), stopped after the test. */
    async server(options?: Parameters<typeof startRedisServer>[0]): Promise<OwnRedisServer> {
      const from = generation;
      return keep(await startRedisServer(options), resources.servers, from);
    },
  };
  beforeAll(() => {
    resources.redis = new TestRedis(prefix);
  });
  afterEach(async () => {
    generation++;
    const { apps, workers, servers, others } = resources;
    resources.apps = [];
    resources.workers = [];
    resources.servers = [];
    resources.others = [];
    await Promise.all(apps.map((app) => app.close()));
    await Promise.all([...workers, ...others].map(closeOrDisconnect));
    await Promise.all(servers.map((server) => server.stop()));
    await resources.redis.cleanup();
  });
  afterAll(async () => {
    await resources.redis.close();
  });
  return resources;
}
