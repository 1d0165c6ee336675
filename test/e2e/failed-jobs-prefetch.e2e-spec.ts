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
  const consumer = (name: string, claimRules?: ReadClaimRules, queues = ['payments']) => {
    const blocking = spec.redis.connection();
    // Asked first: the connection answers nothing else while its read is blocked.
    const clientId = blocking.client('ID');
    const prefetch = failureReads(blocking, keys, name, queues, loader, claimRules);
    const streams = queues.map((queue) => keys.eventsStream(queue));
    /**
     * A read as the stream source sends it (blocking for up to `blockMs`, if given), with
     * the prefetch right behind it: the entries handed, those it read on included.
     */
    const read = async (room = 500, blockMs?: number) => {
      const block = blockMs === undefined ? [] : ['BLOCK', blockMs];
      const reply = blocking.call('XREADGROUP', 'GROUP', keys.group, name, 'COUNT', 500, ...block, 'STREAMS', ...streams, ...streams.map(() => '>'));
      const prefetched = prefetch.request(500, room);
      const pairs = streamReplyPairs(await reply);
      const behind = await prefetched;
      if (!behind) throw new Error('the prefetch is paused');
      return { pairs: [...pairs, ...behind.readOn], found: behind.jobs };
    };
    /** Whether this consumer's connection is blocked in a read now. */
    const blocked = async () => {
      const id = String(await clientId);
      return / flags=\w*b/.test(String(await spec.redis.redis.client('LIST', 'ID', id)));
    };
    return { prefetch, read, blocked };
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
    a.prefetch.received(first.pairs, []);

    // Another consumer was handed none of these entries; this one has nothing new past them.
    expect((await b.read()).found.size).toBe(0);
    expect((await a.read()).found.size).toBe(0);
  });

  test("reads on the streams a blocked read did not return: a child's failure, written with its parent's move, comes with that read", async () => {
    const attempts = spec.closeAfter(new HeldAttempts(spec.redis, 'stock'));
    await spec.redis.redis.xgroup('CREATE', keys.eventsStream('stock'), keys.group, '$', 'MKSTREAM');
    const held = await attempts.running(1, 'payments');
    const parentId = (await spec.redis.queue('stock').getJob(held.attempt.jobId))?.parent?.id as string;
    const g = consumer('g', undefined, ['payments', 'stock']);
    // What the flow wrote so far, as the stream source takes it: the next read waits for new entries.
    g.prefetch.received((await g.read()).pairs, []);
    const reading = g.read(500, 10_000);
    await waitUntil('the read blocks', g.blocked);

    // One BullMQ command fails the child in 'stock' and moves its parent in 'payments'.
    await held.fail();
    const { pairs, found } = await reading;
    const events = pairs.flatMap(([stream, entries]) =>
      entries.map((entry) => {
        const fields = (entry as [string, string[]])[1];
        return `${stream}: ${fields[fields.indexOf('event') + 1]} ${fields[fields.indexOf('jobId') + 1]}`;
      }),
    );
    expect(events).toEqual(
      expect.arrayContaining([`${keys.eventsStream('payments')}: waiting ${parentId}`, `${keys.eventsStream('stock')}: failed ${held.attempt.jobId}`]),
    );
    expect(found.get(jobKey(prefix, 'stock', held.attempt.jobId))?.job?.failedReason).toBe('failed');
  });

  test('pauses once failures are rare (16 reads without one), and runs again after a read that holds one', async () => {
    const { prefetch } = consumer('c');
    const failure: FailureSignal = { source: 'stream', queueName: 'payments', jobId: 'gone' };
    for (let i = 0; i < 16; i++) {
      expect(prefetch.request(500, 500)).toBeDefined();
      prefetch.received([], []);
    }
    expect(prefetch.request(500, 500)).toBeUndefined();
    prefetch.received([], [failure]);
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
    const reader = await claimStore(spec.redis.connection(), keys, 'reader', 60_000, 60_000);
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
    prefetch.received(pairs, signals, found);
    expect(signals.map((signal) => signal.claimed?.granted.length)).toEqual([2, undefined]);

    // The read took them in the same occurrence, leases and states as the claim script: nobody gets them again.
    const other = await claimStore(spec.redis.connection(), keys, 'other', 60_000, 60_000);
    expect(await other.claim([{ occurrenceId: id, snapshot: '{}', handlerKeys: ['h1', 'h2'] }], { markerTtlMs: 60_000 })).toEqual({ granted: [], firstRecorded: [] });
    expect(await spec.redis.redis.hgetall(keys.occurrence(id))).toEqual({ 'h:h1': 'run|reader|1', 'h:h2': 'run|reader|1' });
  });

  test('takes no more claims than the room it is given: the failures past it come back with their jobs, unclaimed', async () => {
    spec.worker('payments');
    const queue = spec.redis.queue('payments');
    const jobs = await Promise.all(Array.from({ length: 4 }, () => queue.add('charge', { fail: true })));
    await failed(...jobs);
    const reader = await claimStore(spec.redis.connection(), keys, 'reader', 60_000, 60_000);
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
    expect(await (await claimStore(spec.redis.connection(), keys, 'worker', 60_000, 60_000)).reserve(held.attempt)).toBe(true);
    const finishedOn = await held.fail();
    const reader = await claimStore(spec.redis.connection(), keys, 'reader', 60_000, 60_000);
    const { read } = consumer('e', { store: reader, handlers: () => ['h1'] });

    const id = occurrenceId('payments', held.attempt.jobId, finishedOn);
    expect((await read()).found.get(jobKey(prefix, 'payments', held.attempt.jobId))?.claimed).toEqual({ occurrenceId: id, granted: [], firstRecorded: true });
    expect(await spec.redis.redis.hgetall(keys.occurrence(id))).toEqual({ 'h:h1': 'run|worker|1' });
  });
});
