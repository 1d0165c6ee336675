import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { type Job, Worker } from 'bullmq';
import { RedisKeys, claimStore } from '../support/internals.js';
import { FlowFailureRuntime } from '../../lib/runtime/flow-failure.runtime.js';
import {
  type AppSpec,
  type TestApp,
  recordingHandlers,
  redisConnection,
  settle,
  startApp,
  uniquePrefix,
  waitUntil,
} from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

const CHILD_HANDLER = 'child-failed:RecordingHandlers.child';

/**
 * A Worker of the app reserves the failure of each flow job it starts, and runs the
 * handlers the moment the job fails, claiming them as they run. These are the ways that
 * could run a handler twice (another path claiming it meanwhile) or never (the reserver
 * dying before its claim).
 */
describe("a Worker's reservations", () => {
  const prefix = uniquePrefix('reservations');
  const keys = new RedisKeys(prefix, 'flow-failure');
  const handlers = [recordingHandlers({ parent: 'orders', child: 'payments' })];
  const queues = ['orders', 'payments'];
  const spec = specResources(prefix);

  const start = async (app: Omit<AppSpec, 'prefix' | 'handlers'>) => {
    const started = await startApp({ prefix, handlers, ...app });
    spec.apps.push(started);
    return started;
  };
  const reservations = async () => (await spec.redis.redis.keys(`${keys.reservationPrefix}*`)).sort();
  const jobIds = (app: TestApp, handler: string) => app.log.of(handler).map((event) => event.jobId);

  test('a Worker reserves the failure of each flow job it starts; the handlers run once on it, and it ends', async () => {
    // A 1 s lease: a failure within 666 ms of the start runs its handlers before claiming them,
    // a later one claims first (as the reserver: what others took in its name is its own).
    const app = await start({ processors: queues, options: { queues, leaseMs: 1000 } });
    const order = (sleepMs: number) =>
      spec.redis.flows.add({
        name: 'order',
        queueName: 'orders',
        children: [{ name: 'charge', queueName: 'payments', data: { fail: true, sleepMs }, opts: { failParentOnFailure: true } }],
      });
    const flows = await Promise.all([order(300), order(800)]);
    const charges = flows.map((flow) => flow.children?.[0].job as Job);
    const reservation = keys.reservation({ queueName: 'payments', jobId: charges[0].id as string, attemptsStarted: 1 });
    await waitUntil('the charge reserved as it runs', async () => (await spec.redis.redis.exists(reservation)) === 1);
    expect(await spec.redis.redis.get(reservation)).toBe(app.app.get(FlowFailureRuntime).owner);

    await waitUntil('every handler ran', () => app.log.runs.length >= 4);
    await settle(app);
    expect(jobIds(app, 'child').sort()).toEqual(charges.map((charge) => charge.id).sort());
    expect(jobIds(app, 'parent').sort()).toEqual(flows.map((flow) => flow.job.id).sort());
    // The runs were recorded as claims (now done), and that ended every reservation, the late one's too.
    expect(await reservations()).toEqual([]);
    const [occurrence] = await spec.redis.redis.keys(keys.occurrence(`payments:${charges[0].id}:*`));
    expect(await spec.redis.redis.hget(occurrence, `h:${CHILD_HANDLER}`)).toBe('done');
    expect(await spec.redis.redis.zcard(keys.leases)).toBe(0);
  });

  test('the reserving replica and another that claims every failure as its stream reads it: each handler runs once', async () => {
    // `workers` runs every Worker, so its stream only backs them up; `reader` has no Worker:
    // its stream is its primary source and claims each failure as it reads it, racing the
    // reserving Worker's handlers.
    const [workers, reader] = await Promise.all([start({ processors: queues, options: { queues } }), start({ options: { queues } })]);
    const flows = await spec.redis.failOrders(50);
    await waitUntil('100 handler runs', () => workers.log.runs.length + reader.log.runs.length >= 100);
    await settle(workers, reader);
    const ran = (handler: string) => [...jobIds(workers, handler), ...jobIds(reader, handler)].sort();
    expect(ran('parent')).toEqual(flows.map((f) => f.job.id).sort());
    expect(ran('child')).toEqual(flows.map((f) => f.children?.[0].job.id).sort());
    expect(await spec.redis.redis.zcard(keys.leases)).toBe(0);
  });

  test('a replica that reserved failures and died before claiming them: another runs each handler once, after the reservation ends', async () => {
    // The replica that dies: its Workers reserve each job as they start it (100 ms), then nothing more.
    const dead = claimStore(spec.redis.connection(), keys, 'dead-replica', 100, 60_000);
    const reserved = new Map<string, Promise<boolean>>();
    const deadWorker = (queue: string) => {
      const worker = new Worker(
        queue,
        async (job) => {
          await reserved.get(job.id as string);
          throw new Error(`${job.name} failed`);
        },
        { connection: redisConnection(), prefix, concurrency: 20 },
      );
      worker.on('active', (job) => reserved.set(job.id as string, dead.reserve({ queueName: queue, jobId: job.id as string, attemptsStarted: job.attemptsStarted })));
      spec.workers.push(worker);
    };
    queues.forEach(deadWorker);
    const app = await start({ options: { queues, sources: ['stream'], leaseMs: 1000 } });
    const flows = await spec.redis.failOrders(10);
    expect(await Promise.all([...reserved.values()])).toContain(true);

    await waitUntil('20 handler runs', () => app.log.runs.length >= 20);
    await settle(app);
    expect(jobIds(app, 'parent').sort()).toEqual(flows.map((f) => f.job.id).sort());
    expect(jobIds(app, 'child').sort()).toEqual(flows.map((f) => f.children?.[0].job.id).sort());
    // At least the payments (whose processor waited for its reservation) were taken in the dead replica's name and taken over.
    expect(app.logger.has('warn', /Took over \d+ claim/)).toBe(true);
    expect(await spec.redis.redis.zcard(keys.leases)).toBe(0);
  });

  test('an instance closing with flow jobs still running gives their reservations back: another replica handles their failures at once', async () => {
    // The default 30 s lease: had the reservation stayed, the failure would wait for it.
    const closing = await start({ processors: queues, options: { queues } });
    const other = await start({ processors: ['orders'], options: { queues } });
    const flow = await spec.redis.flows.add({
      name: 'order',
      queueName: 'orders',
      children: [{ name: 'charge', queueName: 'payments', data: { fail: true, sleepMs: 500 }, opts: { failParentOnFailure: true } }],
    });
    const charge = flow.children?.[0].job as Job;
    await waitUntil('the charge reserved as it runs', async () => (await spec.redis.redis.exists(keys.reservation({ queueName: 'payments', jobId: charge.id as string, attemptsStarted: 1 }))) === 1);
    await closing.close(); // its Worker finishes the charge, which fails unwatched
    spec.apps = spec.apps.filter((app) => app !== closing);

    await waitUntil('both handlers ran', () => other.log.runs.length >= 2);
    await settle(other);
    expect(jobIds(other, 'child')).toEqual([charge.id]);
    expect(jobIds(other, 'parent')).toEqual([flow.job.id]);
    expect(closing.log.runs).toEqual([]);
  });

  test('with workerReservations: false, nothing is reserved, and each handler still runs once', async () => {
    const app = await start({ processors: queues, options: { queues, workerReservations: false } });
    const flow = await spec.redis.flows.add({
      name: 'order',
      queueName: 'orders',
      children: [{ name: 'charge', queueName: 'payments', data: { fail: true, sleepMs: 300 }, opts: { failParentOnFailure: true } }],
    });
    await waitUntil('the charge running', async () => (await flow.children?.[0].job.getState()) === 'active');
    // A third into the charge's run: a reservation would have been taken by now.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await reservations()).toEqual([]);
    await waitUntil('both handlers ran', () => app.log.runs.length >= 2);
    await settle(app);
    expect(jobIds(app, 'child')).toEqual([flow.children?.[0].job.id]);
    expect(jobIds(app, 'parent')).toEqual([flow.job.id]);
    expect(await reservations()).toEqual([]);
  });
});
