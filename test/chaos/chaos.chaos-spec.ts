import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { FlowProducer, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { LiveSource } from 'nestjs-flow-failure';
import { claimsTakenOver, runBehaviour, uniquePrefix, waitUntil } from '../support/harness.js';
import { type OwnRedisServer, startRedisServer } from '../support/redis-server.mjs';
import { AppFleet } from './app-fleet.js';
import { CHAOS_QUEUES, type PlacedFlow, chaosFlow, kindOf, placed } from './chaos-flows.js';
import { moduleKeys, moduleQuiet } from '../support/internals.js';
import { type Kill, type Tally, openRuns, pidHoldingAClaim, tally } from './tally.js';

const FLOWS = 2000;
/** The mass-failure phase: flows added at once, far more failures than the apps may hold (4 x concurrency each). */
const BURST_FLOWS = 1000;
const BATCH = 10;
const BATCH_EVERY_MS = 140;
const KILL_EVERY_MS = 3000;
const APPS = 3;
const MIN_KILLS = 5;
/**
 * Redis restarts while the flows are placed. At each, every lease may run out, and every
 * live holder must be back and renew before anyone takes its claims over: the more
 * restarts, the likelier a holder that comes back late is caught.
 */
const REDIS_RESTARTS = 3;

function connection(server: OwnRedisServer) {
  return { host: '127.0.0.1', port: server.port };
}

/** The result line: a run repeated after a kill inside it is reported apart from a duplicate, which nothing excuses. */
function line(label: string, t: Tally, kills: number, restarts: number): string {
  return (
    `${label}: ${t.occurrences} occurrences, ${kills} kills, ${restarts} redis restart${restarts === 1 ? '' : 's'}, ` +
    `lost ${t.lost.length}, duplicated ${t.duplicated.length}, ` +
    `re-run after a kill inside the run ${t.rerunsInsideKilledRuns} (of ${t.openAtKills} runs open at the kills)`
  );
}

/** Waits until every flow has reached its end state: only then is every failure known. */
async function flowsFinished(queues: Record<string, Queue>, flows: PlacedFlow[]): Promise<boolean> {
  const states = await Promise.all(
    flows.map((flow) =>
      flow.kind === 'wait' ? queues['c-leaf'].getJobState(flow.leaf) : queues['c-top'].getJobState(flow.top),
    ),
  );
  return flows.every((flow, i) => states[i] === (flow.kind === 'fail' || flow.kind === 'wait' ? 'failed' : 'completed'));
}

describe('chaos', () => {
  let server: OwnRedisServer;
  let redis: Redis;

  beforeAll(async () => {
    // The app processes run compiled code: Nest's DI needs tsc's decorator metadata.
    execFileSync('npx', ['tsc', '-p', 'test/chaos/tsconfig.json'], { stdio: 'inherit' });
    server = await startRedisServer({ appendOnly: true });
    redis = new Redis(server.url, { maxRetriesPerRequest: null });
  });

  afterAll(async () => {
    await redis?.quit();
    await server?.stop();
  });

  // The default sources, and the stream alone (its reads fetch the failed jobs in the same script).
  test.each([['worker+stream', undefined], ['stream', ['stream']]] as [string, LiveSource[] | undefined][])(
    `${FLOWS} flows, then ${BURST_FLOWS} at once, while app processes are SIGKILLed, restarted one by one, and Redis restarts: nothing lost, nothing twice (sources: %s)`,
    async (label, sources) => {
      const prefix = uniquePrefix('chaos');
      const fleet = new AppFleet(server.url, prefix, sources);
      const producer = new FlowProducer({ connection: connection(server), prefix });
      const queues = Object.fromEntries(CHAOS_QUEUES.map((q) => [q, new Queue(q, { connection: connection(server), prefix })]));
      const flows: PlacedFlow[] = [];
      const kills: Kill[] = [];
      let restarts = 0;
      let producing = true;
      let ended = false;
      let chaos: Promise<void> | undefined;
      try {
        await Promise.all(Array.from({ length: APPS }, () => fleet.start()));

        chaos = (async () => {
          // At least MIN_KILLS rounds, even on a machine fast enough to finish producing sooner.
          while (!ended && (producing || fleet.kills < MIN_KILLS)) {
            await new Promise((r) => setTimeout(r, KILL_EVERY_MS));
            if (ended) break;
            // Kill a process in the middle of a handler run when there is one, and note what it had not finished...
            const killed = await fleet.kill(await pidHoldingAClaim(redis, prefix, 2000));
            if (killed) kills.push({ ...killed, open: await openRuns(redis, prefix, killed.pid) });
            await fleet.start();
            // ...and restart another gracefully, as a rolling deployment does.
            await fleet.stopOldest();
            await fleet.start();
          }
        })();
        for (let i = 0; i < FLOWS; i += BATCH) {
          const batch = Array.from({ length: BATCH }, (_, j) => ({ index: i + j, kind: kindOf(i + j) }));
          const nodes = await producer.addBulk(batch.map(({ index, kind }) => chaosFlow(index, kind)));
          nodes.forEach((node, j) => flows.push(placed(batch[j].kind, node)));
          // Between two batches, never under one: a batch whose EXEC is cut off by the restart
          // may or may not be in Redis, and this producer could not tell which flows to expect.
          if (restarts < REDIS_RESTARTS && flows.length >= ((restarts + 1) * FLOWS) / (REDIS_RESTARTS + 1)) {
            await server.restart();
            restarts++;
          }
          await new Promise((r) => setTimeout(r, BATCH_EVERY_MS));
        }
        // Mass failure: the burst is shared among the apps while the kills and rolling restarts go on.
        for (let i = FLOWS; i < FLOWS + BURST_FLOWS; i += 100) {
          const batch = Array.from({ length: 100 }, (_, j) => ({ index: i + j, kind: kindOf(i + j) }));
          const nodes = await producer.addBulk(batch.map(({ index, kind }) => chaosFlow(index, kind)));
          nodes.forEach((node, j) => flows.push(placed(batch[j].kind, node)));
        }
        await waitUntil('every flow finished', () => flowsFinished(queues, flows), 90_000);
        producing = false;
        await chaos;
        while (fleet.size < APPS) await fleet.start();

        await waitUntil('every flow finished', () => flowsFinished(queues, flows), 90_000);
        await waitUntil('the module is quiet', () => moduleQuiet(redis, moduleKeys(prefix), CHAOS_QUEUES), 60_000);
        await fleet.stopAll();

        const result = await tally(redis, prefix, flows, kills);
        const takenOver = claimsTakenOver(fleet.output);
        console.log(
          `${line(`chaos (sources: ${label})`, result, fleet.kills, restarts)}\n` +
            `  ${fleet.gracefulStops} graceful (rolling) restarts; ${takenOver} claims of killed processes taken over; ` +
            `runs by source: ${JSON.stringify(result.sources)}`,
        );
        // The kills really hit handlers mid-run, and their claims were recovered elsewhere.
        expect(takenOver).toBeGreaterThan(0);
        expect(restarts).toBe(REDIS_RESTARTS);
        expect(fleet.kills).toBeGreaterThanOrEqual(MIN_KILLS);
        expect(fleet.gracefulStops).toBeGreaterThanOrEqual(MIN_KILLS);
        expect(result.lost).toEqual([]);
        expect(result.duplicated).toEqual([]);
        expect(result.unexpected).toEqual([]);
        expect(result.rerunsInsideKilledRuns).toBeLessThanOrEqual(result.openAtKills);
      } finally {
        // After a failure too: the kill loop ends before the fleet and the connections go.
        ended = true;
        await chaos?.catch(() => undefined);
        await fleet.stopAll();
        await producer.close();
        await Promise.all(Object.values(queues).map((q) => q.close()));
      }
    },
  );

  test('1,000 failures while every app is down and the stream is trimmed to 100 entries: the sweep delivers them all', async () => {
    const prefix = uniquePrefix('gap');
    const fleet = new AppFleet(server.url, prefix);
    const producer = new FlowProducer({ connection: connection(server), prefix });
    const queues = Object.fromEntries(CHAOS_QUEUES.map((q) => [q, new Queue(q, { connection: connection(server), prefix })]));
    const workers: Worker[] = [];
    try {
      // The apps have run once (groups and checkpoints exist), then all stop.
      await fleet.start();
      await fleet.stopAll();
      // A Queue with a short events stream: BullMQ keeps maxLen in the queue's meta, and every writer of the stream obeys it.
      const short = CHAOS_QUEUES.map((q) => new Queue(q, { connection: connection(server), prefix, streams: { events: { maxLen: 100 } } }));
      await waitUntil('the short streams set', async () =>
        (await Promise.all(CHAOS_QUEUES.map((q) => redis.hget(`${prefix}:${q}:meta`, 'opts.maxLenEvents')))).every((maxLen) => maxLen === '100'),
      );
      await Promise.all(short.map((q) => q.close()));

      for (const queue of CHAOS_QUEUES) {
        workers.push(new Worker(queue, runBehaviour, { connection: connection(server), prefix, concurrency: 50 }));
      }
      const flows: PlacedFlow[] = [];
      for (let i = 0; i < 1000; i += 100) {
        const batch = Array.from({ length: 100 }, (_, j) => ({ index: i + j, kind: (i + j) % 2 === 0 ? ('fail' as const) : ('ignore' as const) }));
        const nodes = await producer.addBulk(batch.map(({ index, kind }) => chaosFlow(index, kind)));
        nodes.forEach((node, j) => flows.push(placed(batch[j].kind, node)));
      }
      await waitUntil('every flow finished', () => flowsFinished(queues, flows), 90_000);
      await Promise.all(workers.map((w) => w.close()));
      // The precondition: the stream kept a small tail of the thousands of entries written.
      expect(await redis.xlen(`${prefix}:c-leaf:events`)).toBeLessThan(1000);

      await Promise.all([fleet.start(), fleet.start()]);
      const quiet = () => moduleQuiet(redis, moduleKeys(prefix), CHAOS_QUEUES);
      await waitUntil('the module is quiet', quiet, 60_000);
      await waitUntil('every expected run', async () => (await tally(redis, prefix, flows, [])).lost.length === 0, 60_000);
      await waitUntil('the module is quiet', quiet, 60_000);
      await fleet.stopAll();

      const result = await tally(redis, prefix, flows, []);
      console.log(`${line('chaos (trimmed stream, apps down)', result, 0, 0)}; runs by source: ${JSON.stringify(result.sources)}`);
      expect(result.lost).toEqual([]);
      expect(result.duplicated).toEqual([]);
      expect(result.unexpected).toEqual([]);
      expect(result.sources.sweep).toBeGreaterThan(0);
      expect(fleet.output).toMatch(/events stream of c-\w+ was trimmed past (\d+|some) entries the group had not read/);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
      await fleet.stopAll();
      await producer.close();
      await Promise.all(Object.values(queues).map((q) => q.close()));
    }
  });
});
