import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import type { Job } from 'bullmq';
import { HeldAttempts } from '../support/held-attempts.js';
import { type FailureSignal, type JobLoader, type ReadClaimRules, RedisKeys, claimStore, jobKey, jobLoader, occurrenceId, failureReads, streamReplyPairs } from '../support/internals.js';
import { uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

/**
 * The stream source's read script, straight against Redis: the failed jobs of what one
 * consumer was handed, with the classifier's answers, and nothing of another consumer's.
 * The jobs, their failures and the stream entries are BullMQ's own (Workers and a
 * FlowProducer), not hashes written by hand.
 */
describe('the read-and-claim script behind each stream read', () => {
  const prefix = uniquePrefix('prefetch');
  const keys = new RedisKeys(prefix, 'test-group');
  const stream = keys.eventsStream('payments');
  const spec = specResources(prefix);
  let loader: JobLoader;

  /** One consumer: a blocking connection of its own (as each app instance has) and its prefetch. */
  const consumer = (name: string, claimRules?: ReadClaimRules) => {
    const blocking = spec.redis.connection();
    const prefetch = failureReads(blocking, keys, name, ['payments'], loader, claimRules);
    /** A read as the stream source sends it, with the prefetch right behind it. */
    const read = async (room = 500) => {
      const reply = blocking.call('XREADGROUP', 'GROUP', keys.group, name, 'COUNT', 500, 'STREAMS', stream, '>');
      const prefetched = prefetch.request(500, room);
      const pairs = streamReplyPairs(await reply);
      const found = await prefetched;
      if (!found) throw new Error('the prefetch is paused');
      return { pairs, found };
    };
    return { prefetch, read };
  };
  const failed = (...jobs: Job[]) =>
    waitUntil('the jobs failed', async () => (await Promise.all(jobs.map((job) => job.getState()))).every((state) => state === 'failed'));

  beforeAll(() => {
    loader = jobLoader(spec.redis.connection(), keys);
  });

  beforeEach(async () => {
    // Each test's keys are deleted after it: the group starts again at the stream's end.
    await spec.redis.redis.xgroup('CREATE', stream, keys.group, '$', 'MKSTREAM');
  });

  afterAll(async () => {
    await loader.close();
  });

  test("returns the failed jobs of the entries this consumer was handed, with the classifier's answers, and none of another's", async () => {
    spec.worker('payments');
    spec.worker('stock');
    const plain = await spec.redis.queue('payments').add('charge', { amount: 10, fail: true, reason: 'declined' });
    // A parent its failParentOnFailure child failed: BullMQ names the child in its reason and keeps it in :unsuccessful.
    const flow = await spec.redis.flows.add({
      name: 'settle',
      queueName: 'payments',
      children: [{ name: 'reserve', queueName: 'stock', data: { fail: true }, opts: { failParentOnFailure: true } }],
    });
    await failed(plain, flow.job);
    const parentKey = jobKey(prefix, 'payments', flow.job.id as string);
    const childKey = jobKey(prefix, 'stock', flow.children?.[0].job.id as string);

    const a = consumer('a');
    const b = consumer('b');
    const first = await a.read();
    const found = first.found;
    expect([...found.keys()].sort()).toEqual([jobKey(prefix, 'payments', plain.id as string), parentKey].sort());
    const plainJob = found.get(jobKey(prefix, 'payments', plain.id as string));
    expect(plainJob?.job).toMatchObject({ id: plain.id, name: 'charge', data: { amount: 10 }, failedReason: 'declined' });
    const none = { completed: [], failed: [], ignored: [], pending: [], truncated: false };
    expect(plainJob?.facts).toEqual({ namedChild: undefined, children: none });
    const child = { queueName: 'stock', jobId: flow.children?.[0].job.id, key: childKey, jobName: 'reserve', failedReason: 'reserve failed' };
    // The failed child is the root cause too: nothing deeper failed it.
    const rootCause = { ...child, stacktrace: [expect.stringContaining('Error: reserve failed')] };
    expect(found.get(parentKey)?.facts).toEqual({ namedChild: { key: childKey, failed: true }, children: { ...none, failed: [child] }, rootCause });
    await a.prefetch.received(first.pairs, []);

    // Another consumer was handed none of these entries; this one has nothing new past them.
    expect((await b.read()).found.size).toBe(0);
    expect((await a.read()).found.size).toBe(0);
  });

  test('pauses once failures are rare (16 reads without one), and runs again after a read that holds one', async () => {
    const { prefetch } = consumer('c');
    const failure: FailureSignal = { source: 'stream', queueName: 'payments', jobId: 'gone' };
    for (let i = 0; i < 16; i++) {
      expect(prefetch.request(500, 500)).toBeDefined();
      await prefetch.received([], []);
    }
    expect(prefetch.request(500, 500)).toBeUndefined();
    await prefetch.received([], [failure]);
    expect(prefetch.request(500, 500)).toBeDefined();
  });

  test('with claim rules, takes the claims of each terminal failure it reads, under the rules of every other claim', async () => {
    const worker = spec.worker('payments');
    const queue = spec.redis.queue('payments');
    const [terminal, retried] = await Promise.all([queue.add('charge', { fail: true }), queue.add('charge', { fail: true })]);
    await failed(terminal, retried);
    // Retried before the stream was read: its entry says failed, the job no longer is (and stays waiting).
    await worker.close();
    await retried.retry('failed');
    const finishedOn = (await queue.getJob(terminal.id as string))?.finishedOn as number;
    const reader = claimStore(spec.redis.connection(), keys, 'reader', 60_000, 60_000);
    const { read, prefetch } = consumer('d', { store: reader, handlers: () => ['h1', 'h2'] });

    const { pairs, found } = await read();
    const id = occurrenceId('payments', terminal.id as string, finishedOn);
    expect(found.get(jobKey(prefix, 'payments', terminal.id as string))?.claimed).toEqual({
      occurrenceId: id,
      granted: [
        { occurrenceId: id, handlerKey: 'h1', attempt: 1 },
        { occurrenceId: id, handlerKey: 'h2', attempt: 1 },
      ],
      firstRecorded: true,
    });
    expect(found.get(jobKey(prefix, 'payments', retried.id as string))?.claimed).toBeUndefined();
    const signals: FailureSignal[] = [terminal, retried].map((job) => ({ source: 'stream', queueName: 'payments', jobId: job.id as string }));
    await prefetch.received(pairs, signals, Promise.resolve(found));
    expect(signals.map((signal) => signal.claimed?.granted.length)).toEqual([2, undefined]);

    // The read took them in the same occurrence, leases and states as the claim script: nobody gets them again.
    const other = claimStore(spec.redis.connection(), keys, 'other', 60_000, 60_000);
    expect(await other.claim([{ occurrenceId: id, snapshot: '{}', handlerKeys: ['h1', 'h2'] }], { markerTtlMs: 60_000 })).toEqual({ granted: [], firstRecorded: [] });
    expect(await spec.redis.redis.hgetall(keys.occurrence(id))).toEqual({ 'h:h1': 'run|reader|1', 'h:h2': 'run|reader|1' });
  });

  test('takes no more claims than the room it is given: the failures past it come back with their jobs, unclaimed', async () => {
    spec.worker('payments');
    const queue = spec.redis.queue('payments');
    const jobs = await Promise.all(Array.from({ length: 4 }, () => queue.add('charge', { fail: true })));
    await failed(...jobs);
    const reader = claimStore(spec.redis.connection(), keys, 'reader', 60_000, 60_000);
    const { read } = consumer('f', { store: reader, handlers: () => ['h1'] });

    const { found } = await read(2);
    const answers = jobs.map((job) => found.get(jobKey(prefix, 'payments', job.id as string)));
    expect(answers.map((answer) => answer?.job?.id)).toEqual(jobs.map((job) => job.id));
    expect(answers.filter((answer) => answer?.claimed).map((answer) => answer?.claimed?.granted.length)).toEqual([1, 1]);
    expect(await spec.redis.redis.zcard(keys.leases)).toBe(2);
  });

  test("a failure a Worker reserved is claimed in that Worker's name, not granted to the read", async () => {
    const attempts = spec.closeAfter(new HeldAttempts(spec.redis, 'payments'));
    const held = await attempts.running();
    expect(await claimStore(spec.redis.connection(), keys, 'worker', 60_000, 60_000).reserve(held.attempt)).toBe(true);
    const finishedOn = await held.fail();
    const reader = claimStore(spec.redis.connection(), keys, 'reader', 60_000, 60_000);
    const { read } = consumer('e', { store: reader, handlers: () => ['h1'] });

    const id = occurrenceId('payments', held.attempt.jobId, finishedOn);
    expect((await read()).found.get(jobKey(prefix, 'payments', held.attempt.jobId))?.claimed).toEqual({ occurrenceId: id, granted: [], firstRecorded: true });
    expect(await spec.redis.redis.hgetall(keys.occurrence(id))).toEqual({ 'h:h1': 'run|worker|1' });
  });
});
