import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { FlowProducer } from 'bullmq';
import { Redis } from 'ioredis';
import type { FlowFailureModuleOptions, ParentFailedEvent } from '../../lib/index.js';
import { type TestApp, TestRedis, addCascade, addFailingChildren, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import type { OwnRedisServer } from '../support/redis-server.mjs';
import { specResources } from '../support/spec-resources.js';

/** The names the module's three connections give Redis. */
const MODULE_CONNECTIONS = ['flow-failure', 'flow-failure-jobs', 'flow-failure-reader'];

/** Module options a user sets, end to end. The apps only react; plain Workers fail the jobs. */
describe('module options', () => {
  const prefix = uniquePrefix('options');
  const spec = specResources(prefix);
  const handlers = [recordingHandlers({ parent: true, child: true })];
  const queues = ['parents', 'children'];

  /** The names of the clients connected to a server of the test's own (nobody else's are there). */
  const clientNames = async (redis: Redis) =>
    ((await redis.call('CLIENT', 'LIST')) as string)
      .split('\n')
      .map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined && name.startsWith('flow-failure'))
      .sort();

  /** On a server of the test's own: an app connected with `connection`, Workers and a producer; one child failed and handled. */
  async function handledOn(server: OwnRedisServer, connection: FlowFailureModuleOptions['connection']): Promise<TestApp> {
    const app = await spec.start({ withoutBull: true, handlers, options: { connection, queues } });
    const bull = { connection: { host: '127.0.0.1', port: server.port }, prefix };
    queues.forEach((queue) => spec.worker(queue, undefined, bull));
    const [childId] = await addFailingChildren(spec.closeAfter(new FlowProducer(bull)));
    await waitUntil('the child handled', () => app.log.of('child').some((event) => event.jobId === childId));
    await settle(app);
    return app;
  }

  test('connection as { url }: the module connects there with its three connections, and closes them', async () => {
    const server = await spec.server();
    const redis = spec.client(server.url);
    const app = await handledOn(server, { url: server.url });
    expect(await clientNames(redis)).toEqual(MODULE_CONNECTIONS);
    await app.close();
    expect(await clientNames(redis)).toEqual([]);
  });

  test('connection as an ioredis instance: the module duplicates it, closes its own three, and leaves the instance open', async () => {
    const server = await spec.server();
    const redis = spec.client(server.url);
    const mine = new Redis(server.url, { connectionName: 'flow-failure-users-own' });
    spec.closeAfter({ close: () => mine.quit() });
    const app = await handledOn(server, mine);
    expect(await clientNames(redis)).toEqual([...MODULE_CONNECTIONS, 'flow-failure-users-own'].sort());
    await app.close();
    expect(await clientNames(redis)).toEqual(['flow-failure-users-own']);
    expect(await mine.ping()).toBe('PONG');
  });

  test('consumerGroup: services in different groups each handle every failure once; instances of one group share them', async () => {
    spec.worker('parents');
    spec.worker('children');
    const inGroup = (consumerGroup: string) => spec.start({ withoutBull: true, handlers, options: { queues, consumerGroup } });
    const [billing, billingToo, audit] = await Promise.all([inGroup('billing'), inGroup('billing'), inGroup('audit')]);
    const children = await spec.redis.failChildren(10);
    const handled = (...apps: TestApp[]) => apps.flatMap((app) => app.log.of('child').map((event) => event.jobId)).sort();
    await waitUntil('each group handled every failure', () => handled(billing, billingToo).length >= 10 && handled(audit).length >= 10);
    await settle(billing, billingToo, audit);
    expect(handled(billing, billingToo)).toEqual([...children].sort());
    expect(handled(audit)).toEqual([...children].sort());
  });

  test('a {hash-tagged} prefix end to end: a cascade named by its keys, and every key of the run in the queues\' Cluster slot', async () => {
    const tag = uniquePrefix('bull');
    const tagged = `{${tag}}`;
    const redis = spec.closeAfter(new TestRedis(tagged));
    const app = await spec.start({ prefix: tagged, processors: ['top', 'middle', 'leaf'], handlers });
    const { top: topId, middle, leaf } = await addCascade(redis.flows);
    await waitUntil('four events', () => app.log.runs.length === 4);
    await settle(app);
    const top = app.log.of('parent').find((event) => event.jobId === topId) as ParentFailedEvent;
    expect(top).toMatchObject({
      causedByChild: true,
      failedChild: { queueName: 'middle', jobId: middle, key: `${tagged}:middle:${middle}` },
      rootCause: { queueName: 'leaf', jobId: leaf, key: `${tagged}:leaf:${leaf}`, failedReason: 'disk full' },
    });
    // Redis Cluster hashes a key by its first {…}: every key, BullMQ's and the module's, is in the tag's slot.
    const keys = await redis.keys(`${tagged}:*`);
    expect(keys.filter((key) => key.includes(':flow-failure:')).length).toBeGreaterThan(0);
    expect(keys.filter((key) => /\{([^}]*)\}/.exec(key)?.[1] !== tag)).toEqual([]);
  });
});
