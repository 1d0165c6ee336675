import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { FlowProducer, Worker } from 'bullmq';
import { Cluster } from 'ioredis';
import { type ChildFailedEvent, FlowFailureConfigError, RedisUnreachableError } from 'nestjs-flow-failure';
import { AppProcess, compileProcessApp } from '../support/app-process.js';
import { handlerClass } from '../support/handler-class.js';
import { type AppSpec, type TestApp, recordingHandlers, runBehaviour, settle, startApp, waitUntil } from '../support/harness.js';
import { deadLetterRecords, heldClaims, moduleKeys } from '../support/internals.js';
import { type ProcessRun, runsKey } from '../support/process-app/runs.js';
import { type OwnRedisCluster, startRedisCluster } from '../support/redis-cluster.mjs';
import { holdPort } from '../support/redis-server.mjs';

/**
 * A real Redis Cluster of three masters, started on free ports for this file. Every queue
 * and the module share one hash-tagged prefix (`{bull}` in an app; here one tag per test, so
 * the tests' keys stay apart), so all their keys live in one slot: Workers, FlowProducers,
 * the module's scripts and its blocking stream read all run on the cluster as on one server.
 */
describe('on a Redis Cluster', () => {
  let cluster: OwnRedisCluster;
  let compiled: Awaited<ReturnType<typeof compileProcessApp>> | undefined;
  let closables: { close(): Promise<unknown> }[] = [];
  let test_ = 0;

  beforeAll(async () => {
    [cluster, compiled] = await Promise.all([startRedisCluster(), compileProcessApp()]);
  });

  afterEach(async () => {
    const open = closables.reverse();
    closables = [];
    for (const thing of open) await thing.close();
  });

  afterAll(async () => {
    compiled?.remove();
    await cluster?.stop();
  });

  const closeAfter = <T extends { close(): Promise<unknown> }>(thing: T): T => {
    closables.push(thing);
    return thing;
  };
  /** A hash-tagged prefix of the test's own, as `{bull}` is an app's. */
  const taggedPrefix = () => `{fft-cluster-${++test_}-${process.pid}}`;
  /** An ioredis Cluster client, as an app creates one; closed after the test. */
  const clusterClient = (): Cluster => {
    const client = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: null } });
    closeAfter({ close: () => client.quit() });
    return client;
  };
  const start = async (spec: AppSpec): Promise<TestApp> => closeAfter(await startApp(spec));
  const worker = (connection: Cluster, prefix: string, queue: string) =>
    closeAfter(new Worker(queue, runBehaviour, { connection, prefix, concurrency: 20 }));
  /** `count` parents (queue `parents`), each failed by its child (queue `children`, failParentOnFailure). */
  const failParents = async (flows: FlowProducer, count: number) =>
    flows.addBulk(
      Array.from({ length: count }, (_, i) => ({
        name: `parent-${i}`,
        queueName: 'parents',
        children: [{ name: 'child', queueName: 'children', data: { fail: true }, opts: { failParentOnFailure: true } }],
      })),
    );
  const onceEach = (app: TestApp, handler: string) => {
    const ids = app.log.of(handler).map((event) => event.jobId);
    return [ids.length, new Set(ids).size];
  };
  const described = () => `Redis cluster ${cluster.nodes.map((node) => `${node.host}:${node.port}`).join(',')}`;

  test("BullModule.forRoot()'s Cluster, inherited: the Worker source delivers each failure once; logs name the cluster's nodes", async () => {
    const prefix = taggedPrefix();
    const connection = clusterClient();
    const app = await start({ prefix, connection, processors: ['parents', 'children'], handlers: [recordingHandlers({ parent: 'parents', child: 'children' })] });
    const flows = closeAfter(new FlowProducer({ connection, prefix }));
    await failParents(flows, 10);

    await waitUntil('20 runs', () => app.log.runs.length >= 20);
    await settle(app);
    expect(onceEach(app, 'parent')).toEqual([10, 10]);
    expect(onceEach(app, 'child')).toEqual([10, 10]);
    expect(new Set(app.log.runs.map((run) => run.event.source))).toContain('worker');
    expect(app.logger.lines.some((line) => line.level === 'log' && line.message.includes(described()))).toBe(true);
    expect(await heldClaims(connection, moduleKeys(prefix))).toEqual([]);
  });

  test('cluster options ({ startupNodes }) and Workers elsewhere: the stream source delivers each failure once', async () => {
    const prefix = taggedPrefix();
    const producer = clusterClient();
    const app = await start({
      prefix,
      withoutBull: true,
      handlers: [recordingHandlers({ parent: 'parents', child: 'children' })],
      options: { connection: { startupNodes: cluster.nodes }, prefix, queues: ['parents', 'children'], sources: ['stream'] },
    });
    worker(producer, prefix, 'parents');
    worker(producer, prefix, 'children');
    await failParents(closeAfter(new FlowProducer({ connection: producer, prefix })), 10);

    await waitUntil('20 runs', () => app.log.runs.length >= 20);
    await settle(app);
    expect(onceEach(app, 'parent')).toEqual([10, 10]);
    expect(onceEach(app, 'child')).toEqual([10, 10]);
    expect(new Set(app.log.runs.map((run) => run.event.source))).toEqual(new Set(['stream']));
  });

  test('an ioredis Cluster given to the module, no live source: the sweep delivers the failure once', async () => {
    const prefix = taggedPrefix();
    const connection = clusterClient();
    const app = await start({
      prefix,
      withoutBull: true,
      handlers: [recordingHandlers({ child: 'children' })],
      options: { connection, prefix, queues: ['parents', 'children'], sources: [], sweepIntervalMs: 1000 },
    });
    worker(connection, prefix, 'parents');
    worker(connection, prefix, 'children');
    await failParents(closeAfter(new FlowProducer({ connection, prefix })), 1);

    // The sweep leaves a failure 5 s to the live sources first.
    await waitUntil('the sweep delivered it', () => app.log.runs.length === 1, 15_000);
    await settle(app);
    expect((app.log.of('child') as ChildFailedEvent[]).map((event) => event.source)).toEqual(['sweep']);
  });

  test('an instance killed during a handler: another takes its claim over and runs the handler once', async () => {
    const prefix = taggedPrefix();
    const connection = clusterClient();
    const options = { leaseMs: 1000, sweepIntervalMs: 0 };
    const killed = closeAfter(
      await AppProcess.start(compiled?.entry as string, {
        CLUSTER_NODES: JSON.stringify(cluster.nodes),
        PREFIX: prefix,
        QUEUES: 'parents,children',
        OPTIONS: JSON.stringify(options),
        HANDLER_MS: '60000',
      }),
    );
    worker(connection, prefix, 'parents');
    worker(connection, prefix, 'children');
    const [flow] = await failParents(closeAfter(new FlowProducer({ connection, prefix })), 1);
    const runs = async () => (await connection.lrange(runsKey(prefix), 0, -1)).map((json) => JSON.parse(json) as ProcessRun);
    await waitUntil('both handlers started in the process', async () => (await runs()).length === 2);
    await killed.kill();

    const other = await start({
      prefix,
      withoutBull: true,
      handlers: [recordingHandlers({ parent: true, child: true })],
      options: { connection: { startupNodes: cluster.nodes }, prefix, queues: ['parents', 'children'], ...options },
    });
    await waitUntil('both runs taken over', () => other.log.runs.length >= 2, 15_000);
    await settle(other);
    expect(other.log.of('parent').map((event) => event.jobId)).toEqual([flow.job.id]);
    expect(other.log.of('child').map((event) => event.jobId)).toEqual([flow.children?.[0].job.id]);
    expect((await runs()).map((run) => [run.pid, run.phase])).toEqual([
      [killed.pid, 'start'],
      [killed.pid, 'start'],
    ]);
    // The killed instance also held claims its read took for handlers that did not want the
    // failure; it died before releasing them. They are released when the periodic take-over
    // finds their leases run out, which may be after `other` is idle: whenIdle waits for this
    // instance's work, not for another's leases to lapse.
    await waitUntil('the killed instance holds no claim', async () => (await heldClaims(connection, moduleKeys(prefix))).length === 0, 5_000).catch(() => undefined);
    expect(await heldClaims(connection, moduleKeys(prefix))).toEqual([]);
  });

  test('a handler that keeps throwing: kept as a dead letter after handlerAttempts, listed by the service', async () => {
    const prefix = taggedPrefix();
    const connection = clusterClient();
    const attempts: string[] = [];
    const broken = handlerClass({ child: 'children' }, (_handler, event) => {
      attempts.push(event.jobId);
      return Promise.reject(new Error(`ledger down for ${event.jobId}`));
    });
    const app = await start({ prefix, connection, processors: ['parents', 'children'], handlers: [broken], options: { handlerAttempts: 2, handlerBackoffMs: 10 } });
    const [flow] = await failParents(closeAfter(new FlowProducer({ connection, prefix })), 1);
    const childId = flow.children?.[0].job.id as string;

    await waitUntil('a dead letter', async () => (await app.flowFailure.getDeadLetters()).length === 1);
    await settle(app);
    const [letter] = await app.flowFailure.getDeadLetters();
    expect(letter).toMatchObject({ jobId: childId, attempts: 2, lastError: `ledger down for ${childId}` });
    expect(attempts).toEqual([childId, childId]);
    expect((await deadLetterRecords(connection, moduleKeys(prefix))).map((record) => record.jobId)).toEqual([childId]);
  });

  describe('a layout that cannot work fails init() and says what to use', () => {
    test("a prefix without a hash tag (BullModule.forRoot()'s prefix and Cluster, inherited)", async () => {
      // No @Processor: Workers started before the failed init() would be left running by Nest.
      const started = startApp({ prefix: 'fft-untagged', connection: clusterClient(), options: { queues: ['parents', 'children'] } });
      await expect(started).rejects.toThrow(FlowFailureConfigError);
      await expect(started).rejects.toThrow(
        new RegExp(`^FlowFailureModule\\.forRoot\\(\\): ${described()}: prefix "fft-untagged" carries no hash tag.*CROSSSLOT.*such as "\\{bull\\}"`),
      );
    });

    test('a hash tag per queue ({orders}): the module keys would go to another slot', async () => {
      const started = startApp({
        prefix: 'bull',
        withoutBull: true,
        options: { connection: { startupNodes: cluster.nodes }, queues: ['{orders}', '{payments}'] },
      });
      await expect(started).rejects.toThrow(/prefix "bull" carries no hash tag.*hash tags in queue names, as "\{orders\}", "\{payments\}", do not cover the module's keys.*such as "\{bull\}"/);
    });

    test('a single-server connection to a cluster node', async () => {
      const [node] = cluster.nodes;
      const started = startApp({ prefix: '{bull}', withoutBull: true, options: { connection: { host: node.host, port: node.port }, queues: ['orders'] } });
      await expect(started).rejects.toThrow(RedisUnreachableError);
      await expect(started).rejects.toThrow(/node of a Redis Cluster, reached as a single server.*Pass an ioredis Cluster/);
    });

    test('a cluster whose nodes do not answer: one error naming them, no default server tried', async () => {
      const held = await holdPort();
      try {
        const started = startApp({ prefix: '{bull}', withoutBull: true, options: { connection: { startupNodes: [{ host: '127.0.0.1', port: held.port }] }, queues: ['orders'] } });
        await expect(started).rejects.toThrow(new RegExp(`^nestjs-flow-failure cannot reach Redis at cluster 127\\.0\\.0\\.1:${held.port}: `));
      } finally {
        await held.release();
      }
    });
  });
});
