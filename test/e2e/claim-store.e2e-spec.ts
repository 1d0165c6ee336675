import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { HeldAttempts } from '../support/held-attempts.js';
import { type ClaimRequest, type ClaimResult, type ClaimStore, type GrantedClaim, RedisKeys, claimStore, occurrenceId, serverRunId } from '../support/internals.js';
import { Redis } from 'ioredis';
import { TestRedis, uniquePrefix, waitUntil } from '../support/harness.js';
import { startRedisServer } from '../support/redis-server.mjs';

/**
 * The one claim mechanism, straight against Redis: every delivery path (Worker, stream,
 * sweep, reaper, replay, another replica) ends in these scripts, so what they grant is
 * what runs.
 */
/** The claims a call granted (what most tests here check; what it recorded first has a test of its own). */
const grantedOnly = (result: ClaimResult) => result.granted;

describe('ClaimStore', () => {
  const prefix = uniquePrefix('claims');
  const keys = new RedisKeys(prefix, 'test-group');
  let redis: TestRedis;
  /** One replica's store, on its own connection (as each app instance has). */
  const store = (owner: string, leaseMs = 60_000) => claimStore(redis.connection(), keys, owner, leaseMs, 60_000);
  const request = (occurrenceId: string, ...handlerKeys: string[]): ClaimRequest => ({ occurrenceId, snapshot: '{}', handlerKeys });
  const members = (claims: GrantedClaim[]) => claims.map((c) => `${c.handlerKey}@${c.occurrenceId}#${c.attempt}`).sort();

  beforeAll(() => {
    redis = new TestRedis(prefix);
  });

  afterAll(async () => {
    await redis.close();
  });

  test('replicas claiming the same batch at once: every handler of every occurrence is granted once', async () => {
    const replicas = await Promise.all([store('a'), store('b'), store('c')]);
    const batch = ['q:1:100', 'q:2:100', 'q:3:100'].map((id) => request(id, 'parent-failed:H.undo', 'child-failed:H.alert'));
    const granted = (await Promise.all(replicas.map((replica) => replica.claim(batch, { markerTtlMs: 60_000 }).then(grantedOnly)))).flat();
    expect(members(granted)).toEqual(
      batch.flatMap((r) => r.handlerKeys.map((h) => `${h}@${r.occurrenceId}#1`)).sort(),
    );
  });

  test('a claim call says which occurrences it recorded first: each one in one call among replicas', async () => {
    const replicas = await Promise.all([store('a'), store('b')]);
    const batch = ['q:30:100', 'q:31:100'].map((id) => request(id, 'h1'));
    const results = await Promise.all(replicas.map((replica) => replica.claim(batch, { markerTtlMs: 60_000 })));
    expect(results.flatMap((r) => r.firstRecorded).sort()).toEqual(['q:30:100', 'q:31:100']);
    expect((await (await store('c')).claim(batch, { markerTtlMs: 60_000 })).firstRecorded).toEqual([]);
  });

  test('one call mixes fresh, held and expired claims; only the free ones are granted', async () => {
    const first = await store('first', 50);
    await first.claim([request('q:4:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    const held = await store('held');
    await held.claim([request('q:5:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    await new Promise((resolve) => setTimeout(resolve, 120)); // q:4's lease (50 ms) runs out

    const taker = await store('taker');
    const granted = await taker.claim([request('q:4:100', 'h1'), request('q:5:100', 'h1'), request('q:6:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    // q:4 is taken over (its second attempt), q:5 is still held, q:6 is new.
    expect(members(granted)).toEqual(['h1@q:4:100#2', 'h1@q:6:100#1']);
  });

  test('an expired lease is taken only on the server the caller trusted: none while holders catch up after an outage, none in a call resent after a restart; a claim handed back is taken at once', async () => {
    const holder = await store('holder', 50);
    await holder.claim([request('q:50:100', 'h1')], { markerTtlMs: 60_000 });
    const closing = await store('closing');
    const [handedBack] = (await closing.claim([request('q:52:100', 'h1')], { markerTtlMs: 60_000 })).granted;
    expect(await closing.lease([handedBack], 'release')).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 120)); // the holder's lease (50 ms) runs out
    const catchingUp = await claimStore(redis.connection(), keys, 'catching-up', 60_000, 60_000, '');
    const resentAfterRestart = await claimStore(redis.connection(), keys, 'resent', 60_000, 60_000, 'run-id-of-the-server-before-its-restart');

    // A new occurrence and a claim handed back are claimed all the same; the expired claim is left to the take-over.
    expect((await catchingUp.expired(100, true)).map((c) => c.occurrenceId)).toEqual(['q:52:100']);
    const claims = [request('q:50:100', 'h1'), request('q:51:100', 'h1'), request('q:52:100', 'h1')];
    expect(members(await catchingUp.claim(claims, { markerTtlMs: 60_000 }).then(grantedOnly))).toEqual(['h1@q:51:100#1', 'h1@q:52:100#2']);
    expect(await resentAfterRestart.claim([request('q:50:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly)).toEqual([]);
    expect(members(await (await store('taker')).claim([request('q:50:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly))).toEqual(['h1@q:50:100#2']);
  });

  test('for a Redis user that may not run INFO the run id reads as unknown, and expired leases are still taken over', async () => {
    const server = await startRedisServer();
    const admin = new Redis(server.url);
    await admin.call('ACL', 'SETUSER', 'no-info', 'on', '>secret', '~*', '&*', '+@all', '-info');
    const limited = new Redis({ port: server.port, username: 'no-info', password: 'secret', enableReadyCheck: false });
    try {
      const holder = await claimStore(limited, keys, 'holder', 50, 60_000);
      await holder.claim([request('q:60:100', 'h1')], { markerTtlMs: 60_000 });
      await new Promise((resolve) => setTimeout(resolve, 120)); // its lease (50 ms) runs out
      const taker = await claimStore(limited, keys, 'taker', 60_000, 60_000);
      expect(members(await taker.claim([request('q:60:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly))).toEqual(['h1@q:60:100#2']);
      await expect(limited.info('server')).rejects.toThrow(/NOPERM/);
      expect(await serverRunId(limited, keys)).toBe('unknown');
      expect(await serverRunId(admin, keys)).toMatch(/^[0-9a-f]{40}$/);
    } finally {
      limited.disconnect();
      await admin.quit();
      await server.stop();
    }
  });

  test("a forgotten occurrence's expired lease is dropped; a live claim's is not", async () => {
    const holder = await store('holder', 50);
    const [claim] = await holder.claim([request('q:9:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    await new Promise((resolve) => setTimeout(resolve, 120));
    const expired = async () => (await holder.expired(100)).filter((c) => c.occurrenceId === 'q:9:100');

    await holder.dropLease(claim); // the occurrence is still stored and its handler running: kept
    expect(await expired()).toEqual([claim].map(({ handlerKey, occurrenceId }) => ({ handlerKey, occurrenceId })));
    await redis.redis.del(keys.occurrence('q:9:100'));
    await holder.dropLease(claim);
    expect(await expired()).toEqual([]);
  });

  test('outcomes reported together are settled together, each against its own claim', async () => {
    const owner = await store('slow-owner', 50);
    const [lost] = await owner.claim([request('q:10:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    await new Promise((resolve) => setTimeout(resolve, 120)); // its lease runs out and another replica takes it
    expect(members(await (await store('new-owner')).claim([request('q:10:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly))).toEqual(['h1@q:10:100#2']);
    const both = await owner.claim([request('q:11:100', 'h1', 'h2')], { markerTtlMs: 60_000 }).then(grantedOnly);

    const outcomes = await Promise.all([
      owner.settle(both[0], { outcome: 'done' }),
      owner.settle(lost, { outcome: 'done' }),
      owner.settle(both[1], { outcome: 'dead' }),
    ]);
    expect(outcomes).toEqual([true, false, true]);
    const states = await redis.redis.hgetall(keys.occurrence('q:11:100'));
    expect([states[`h:${both[0].handlerKey}`], states[`h:${both[1].handlerKey}`]]).toEqual(['done', 'dead|1']);
    expect((await redis.redis.hgetall(keys.occurrence('q:10:100')))['h:h1']).toBe('run|new-owner|2');
  });

  test('a parked claim (a retry waiting for its backoff) keeps its attempts: its owner takes it back at once, anyone else once its lease ends', async () => {
    const owner = await store('parker');
    const [claim] = await owner.claim([request('q:40:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    expect(await owner.park([{ ...claim, delayMs: 300, attemptsMade: 1 }])).toEqual([true]);
    expect((await redis.redis.hgetall(keys.occurrence('q:40:100')))['h:h1']).toBe('wait|parker|1');
    expect(await (await store('other')).claim([request('q:40:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly)).toEqual([]);
    expect(members(await owner.claim([request('q:40:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly))).toEqual(['h1@q:40:100#2']);

    // Its owner gone: the next attempt is anyone's once the lease ends, and counts as the second.
    const [again] = await owner.claim([request('q:41:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    await owner.park([{ ...again, delayMs: 100, attemptsMade: 1 }]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(members(await (await store('other')).claim([request('q:41:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly))).toEqual(['h1@q:41:100#2']);
  });

  test('recorded: claimed, settled and no-handler occurrences are; unseen ones are not', async () => {
    const owner = await store('recorder');
    await owner.claim([request('q:12:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    const [settled] = await owner.claim([request('q:13:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    await owner.settle(settled, { outcome: 'done' });
    await owner.claim([request('q:14:100')], { markerTtlMs: 60_000 }).then(grantedOnly); // no handler wanted it: marked as seen
    expect(await owner.recorded(['q:12:100', 'q:13:100', 'q:14:100', 'q:15:100'])).toEqual([true, true, true, false]);
    expect(await owner.recorded([])).toEqual([]);
  });

  test('a done claim is never granted again, nor is a dead one without revive', async () => {
    const owner = await store('owner');
    const [done] = await owner.claim([request('q:7:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    const [dead] = await owner.claim([request('q:8:100', 'h1')], { markerTtlMs: 60_000 }).then(grantedOnly);
    expect(await owner.settle(done, { outcome: 'done' })).toBe(true);
    expect(await owner.settle(dead, { outcome: 'dead' })).toBe(true);

    const other = await store('other');
    const batch = [request('q:7:100', 'h1'), request('q:8:100', 'h1')];
    expect(await other.claim(batch, { markerTtlMs: 60_000 }).then(grantedOnly)).toEqual([]);
    expect(members(await other.claim(batch, { revive: true, markerTtlMs: 60_000 }).then(grantedOnly))).toEqual(['h1@q:8:100#2']);
  });

  test("releaseUnwanted gives up the claims of handlers that do not want the occurrence: this owner's and expired ones, never another's live claim", async () => {
    const owner = await store('reader');
    const stale = await store('stale', 50);
    const other = await store('other');
    await owner.claim([{ occurrenceId: 'q:16:100', snapshot: '', handlerKeys: ['wanted', 'unwanted'] }], { markerTtlMs: 60_000 }).then(grantedOnly);
    await stale.claim([request('q:17:100', 'expired')], { markerTtlMs: 60_000 }).then(grantedOnly);
    await other.claim([request('q:17:100', 'live')], { markerTtlMs: 60_000 }).then(grantedOnly);
    await owner.claim([{ occurrenceId: 'q:18:100', snapshot: '', handlerKeys: ['unwanted'] }], { markerTtlMs: 60_000 }).then(grantedOnly);
    await new Promise((resolve) => setTimeout(resolve, 120)); // the stale owner's lease (50 ms) runs out

    await owner.releaseUnwanted(
      [
        { occurrenceId: 'q:16:100', snapshot: '{"s":16}', handlerKeys: ['unwanted'] },
        { occurrenceId: 'q:17:100', snapshot: '{"s":17}', handlerKeys: ['expired', 'live'] },
        { occurrenceId: 'q:18:100', snapshot: '{"s":18}', handlerKeys: ['unwanted'] },
      ],
      5_000,
    );
    const leases = await redis.redis.zrange(keys.leases, '0', '-1');
    // q:16: the wanted claim still runs, with the snapshot another replica would need to take it over.
    expect(await redis.redis.hgetall(keys.occurrence('q:16:100'))).toEqual({ 'h:wanted': 'run|reader|1', snapshot: '{"s":16}' });
    expect(leases).toContain('wanted|q:16:100');
    expect(leases).not.toContain('unwanted|q:16:100');
    // q:17: the expired claim is forgotten, another owner's live one is not.
    expect(Object.keys(await redis.redis.hgetall(keys.occurrence('q:17:100'))).sort()).toEqual(['h:live', 'snapshot']);
    expect(leases).toContain('live|q:17:100');
    expect(leases).not.toContain('expired|q:17:100');
    // q:18: no handler wants it: a marker that the sweep sees as recorded, for the marker's TTL.
    expect(await redis.redis.hgetall(keys.occurrence('q:18:100'))).toEqual({ snapshot: '{"s":18}' });
    expect(await redis.redis.pttl(keys.occurrence('q:18:100'))).toBeLessThanOrEqual(5_000);
    expect(await owner.recorded(['q:18:100'])).toEqual([true]);
  });

  describe("a Worker's reservation", () => {
    /** Attempts of queue `held` that a real Worker holds running until the test fails them (occurrences of queue `q` above are made up). */
    let attempts: HeldAttempts;
    /** A job's first attempt, running, reserved by `reserver`, then failed: its failed attempt and occurrence id. */
    const reservedFailure = async (reserver: ClaimStore) => {
      const held = await attempts.running();
      expect(await reserver.reserve(held.attempt)).toBe(true);
      const finishedOn = await held.fail();
      return { attempt: held.attempt, id: occurrenceId('held', held.attempt.jobId, finishedOn) };
    };

    beforeAll(() => {
      attempts = new HeldAttempts(redis, 'held');
    });

    afterAll(async () => {
      await attempts.close();
    });

    test('is taken only for the attempt running now, never once it has ended', async () => {
      const worker = await store('worker');
      const { attempt, fail } = await attempts.running(2);
      expect(await worker.reserve({ ...attempt, attemptsStarted: 1 })).toBe(false);
      expect(await worker.reserve(attempt)).toBe(true);
      expect(await redis.redis.get(keys.reservation({ queueName: 'held', jobId: attempt.jobId, attemptsStarted: 2 }))).toBe('worker');
      await fail();
      // Its failure may be claimed by now: reserving it after the fact could run it twice.
      await redis.redis.del(keys.reservation({ queueName: 'held', jobId: attempt.jobId, attemptsStarted: 2 }));
      expect(await worker.reserve(attempt)).toBe(false);
    });

    test("while it lives, others claim in the reserver's name until it ends; the reserver's claimReserved takes them and ends it", async () => {
      const worker = await store('worker', 5000);
      const other = await store('other');
      const { attempt, id } = await reservedFailure(worker);
      const reserved = { ...request(id, 'h1', 'h2'), failedAttempt: attempt };

      expect(await other.claim([reserved], { markerTtlMs: 60_000 }).then(grantedOnly)).toEqual([]);
      expect(await redis.redis.hgetall(keys.occurrence(id))).toEqual({ 'h:h1': 'run|worker|1', 'h:h2': 'run|worker|1', snapshot: '{}' });
      // Their leases end with the reservation: should the reserver be gone, they are taken over then.
      const lease = await redis.redis.zscore(keys.leases, `h2|${id}`);
      const [seconds, micros] = await redis.redis.time();
      expect(Number(lease) - (Number(seconds) * 1000 + Math.floor(Number(micros) / 1000))).toBeLessThanOrEqual(5000);

      expect(members(await worker.claimReserved([{ ...request(id, 'h1'), failedAttempt: attempt }], 60_000).then(grantedOnly))).toEqual([`h1@${id}#1`]);
      expect(await redis.redis.exists(keys.reservation({ queueName: 'held', jobId: attempt.jobId, attemptsStarted: 1 }))).toBe(0);
      expect(await other.claim([reserved], { markerTtlMs: 60_000 }).then(grantedOnly)).toEqual([]);
    });

    test("the reserver's own claim is granted as usual, and another attempt's reservation changes nothing", async () => {
      const worker = await store('worker');
      const { attempt, id } = await reservedFailure(worker);
      expect(members(await worker.claim([{ ...request(id, 'h1'), failedAttempt: attempt }], { markerTtlMs: 60_000 }).then(grantedOnly))).toEqual([`h1@${id}#1`]);
      // The third attempt of another job runs, reserved; a failure of its second is claimed as usual.
      const third = await attempts.running(3);
      expect(await worker.reserve(third.attempt)).toBe(true);
      const second = { ...request(`held:${third.attempt.jobId}:100`, 'h1'), failedAttempt: { ...third.attempt, attemptsStarted: 2 } };
      expect(members(await (await store('other')).claim([second], { markerTtlMs: 60_000 }).then(grantedOnly))).toEqual([`h1@held:${third.attempt.jobId}:100#1`]);
    });

    test('one that lapses unconverted (its process died): the claims taken in its name are taken over once it ends', async () => {
      const gone = await store('gone', 1000);
      const other = await store('other');
      const { attempt, id } = await reservedFailure(gone);
      const reserved = { ...request(id, 'h1'), failedAttempt: attempt };
      expect(await other.claim([reserved], { markerTtlMs: 60_000 }).then(grantedOnly)).toEqual([]);
      await waitUntil('the reservation ended', async () => (await redis.redis.exists(keys.reservation({ queueName: 'held', jobId: attempt.jobId, attemptsStarted: 1 }))) === 0);
      expect(members(await other.claim([reserved], { markerTtlMs: 60_000 }).then(grantedOnly))).toEqual([`h1@${id}#2`]);
      // The reserver, back too late, learns that the claim is not its own.
      expect(await gone.claimReserved([reserved], 60_000).then(grantedOnly)).toEqual([]);
    });
  });
});
