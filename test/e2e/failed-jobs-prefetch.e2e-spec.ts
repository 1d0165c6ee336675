import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ClaimStore, FailedJobsPrefetch, type FailureSignal, jobKey, JobLoader, ModuleKeys, occurrenceId, type ReadClaimRules, streamReplyPairs } from '../support/internals.js';
import { TestRedis, uniquePrefix } from '../support/harness.js';

/**
 * The stream source's read script, straight against Redis: the failed jobs of what one
 * consumer was handed, with the classifier's answers, and nothing of another consumer's.
 */
describe('FailedJobsPrefetch', () => {
  const prefix = uniquePrefix('prefetch');
  const keys = new ModuleKeys(prefix, 'test-group');
  const stream = keys.eventsStream('payments');
  let redis: TestRedis;
  let loader: JobLoader;

  /** One consumer: a blocking connection of its own (as each app instance has) and its prefetch. */
  const consumer = (name: string, claimRules?: ReadClaimRules) => {
    const blocking = redis.connection();
    const prefetch = new FailedJobsPrefetch(blocking, keys, name, new Map([[stream, 'payments']]), loader, () => true, claimRules);
    /** A read as the stream source sends it, with the prefetch right behind it. */
    const read = async () => {
      const reply = blocking.call('XREADGROUP', 'GROUP', keys.group, name, 'COUNT', 500, 'STREAMS', stream, '>');
      const prefetched = prefetch.request(500);
      const pairs = streamReplyPairs(await reply);
      const found = await prefetched;
      if (!found) throw new Error('the prefetch is paused');
      return { pairs, found };
    };
    return { prefetch, read };
  };

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    loader = new JobLoader(redis.connection());
    await redis.redis.xgroup('CREATE', stream, keys.group, '$', 'MKSTREAM');
  });

  afterAll(async () => {
    await loader.close();
    await redis.close();
  });

  test("returns the failed jobs of the entries this consumer was handed, with the classifier's answers, and none of another's", async () => {
    const queue = redis.queue('payments');
    const plain = await queue.add('charge', { amount: 10 });
    const parent = await queue.add('settle', {});
    const parentKey = jobKey(prefix, 'payments', parent.id as string);
    const childKey = jobKey(prefix, 'stock', 'c1');
    await redis.redis.hset(parentKey, 'failedReason', `child ${childKey} failed`, 'finishedOn', 5);
    await redis.redis.zadd(`${parentKey}:unsuccessful`, 1, childKey);
    await redis.redis.xadd(stream, '*', 'event', 'active', 'jobId', plain.id as string);
    await redis.redis.xadd(stream, '*', 'event', 'failed', 'jobId', plain.id as string, 'failedReason', 'declined');
    await redis.redis.xadd(stream, '*', 'event', 'failed', 'jobId', parent.id as string);

    const a = consumer('a');
    const b = consumer('b');
    const first = await a.read();
    const found = first.found;
    expect([...found.keys()].sort()).toEqual([jobKey(prefix, 'payments', plain.id as string), parentKey].sort());
    const plainJob = found.get(jobKey(prefix, 'payments', plain.id as string));
    expect(plainJob?.job).toMatchObject({ id: plain.id, name: 'charge', data: { amount: 10 } });
    expect(plainJob?.facts).toEqual({ namedChild: undefined, hadChildren: false });
    expect(found.get(parentKey)?.facts).toEqual({ namedChild: { key: childKey, failed: true }, hadChildren: true });
    await a.prefetch.received(first.pairs, []);

    // Another consumer was handed none of these entries; this one has nothing new past them.
    expect((await b.read()).found.size).toBe(0);
    expect((await a.read()).found.size).toBe(0);
  });

  test('pauses once failures are rare (16 reads without one), and runs again after a read that holds one', async () => {
    const { prefetch } = consumer('c');
    const failure: FailureSignal = { source: 'stream', queueName: 'payments', jobId: 'gone' };
    for (let i = 0; i < 16; i++) {
      expect(prefetch.request(500)).toBeDefined();
      await prefetch.received([], []);
    }
    expect(prefetch.request(500)).toBeUndefined();
    await prefetch.received([], [failure]);
    expect(prefetch.request(500)).toBeDefined();
  });

  test('with claim rules, takes the claims of each terminal failure it reads, under the rules of every other claim', async () => {
    const queue = redis.queue('payments');
    const failed = await queue.add('charge', {});
    const retrying = await queue.add('charge', {});
    await redis.redis.hset(jobKey(prefix, 'payments', failed.id as string), 'failedReason', 'declined', 'finishedOn', 1234);
    await redis.redis.hset(jobKey(prefix, 'payments', retrying.id as string), 'failedReason', 'declined'); // not terminal: no finishedOn
    await redis.redis.xadd(stream, '*', 'event', 'failed', 'jobId', failed.id as string);
    await redis.redis.xadd(stream, '*', 'event', 'failed', 'jobId', retrying.id as string);
    const reader = new ClaimStore(redis.connection(), keys, 'reader', 60_000, 60_000);
    const { read, prefetch } = consumer('d', { args: reader.claimArgs(), candidates: () => ['h1', 'h2'] });

    const { pairs, found } = await read();
    const id = occurrenceId('payments', failed.id as string, 1234);
    expect(found.get(jobKey(prefix, 'payments', failed.id as string))?.claimed).toEqual({
      occurrenceId: id,
      granted: [
        { occurrenceId: id, handlerKey: 'h1', attempt: 1 },
        { occurrenceId: id, handlerKey: 'h2', attempt: 1 },
      ],
    });
    expect(found.get(jobKey(prefix, 'payments', retrying.id as string))?.claimed).toBeUndefined();
    const signals: FailureSignal[] = [failed, retrying].map((job) => ({ source: 'stream', queueName: 'payments', jobId: job.id as string }));
    await prefetch.received(pairs, signals, Promise.resolve(found));
    expect(signals.map((signal) => signal.claimed?.granted.length)).toEqual([2, undefined]);

    // The read took them in the same occurrence, leases and states as the claim script: nobody gets them again.
    const other = new ClaimStore(redis.connection(), keys, 'other', 60_000, 60_000);
    expect(await other.claim([{ occurrenceId: id, snapshot: '{}', handlerKeys: ['h1', 'h2'] }], { markerTtlMs: 60_000 })).toEqual([]);
    expect(await redis.redis.hgetall(keys.occurrence(id))).toEqual({ 'h:h1': 'run|reader|1', 'h:h2': 'run|reader|1' });
  });

  test("a failure a Worker reserved is claimed in that Worker's name, not granted to the read", async () => {
    const failed = await redis.queue('payments').add('charge', {});
    const key = jobKey(prefix, 'payments', failed.id as string);
    await redis.redis.hset(key, 'ats', 1);
    const attempt = { queueName: 'payments', jobId: failed.id as string, attemptsStarted: 1 };
    expect(await new ClaimStore(redis.connection(), keys, 'worker', 60_000, 60_000).reserve(attempt)).toBe(true);
    await redis.redis.hset(key, 'failedReason', 'declined', 'finishedOn', 1234);
    await redis.redis.xadd(stream, '*', 'event', 'failed', 'jobId', failed.id as string);
    const reader = new ClaimStore(redis.connection(), keys, 'reader', 60_000, 60_000);
    const { read } = consumer('e', { args: reader.claimArgs(), candidates: () => ['h1'] });

    const id = occurrenceId('payments', failed.id as string, 1234);
    expect((await read()).found.get(key)?.claimed).toEqual({ occurrenceId: id, granted: [] });
    expect(await redis.redis.hgetall(keys.occurrence(id))).toEqual({ 'h:h1': 'run|worker|1' });
  });
});
