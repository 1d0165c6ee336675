import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import type { Job } from 'bullmq';
import { type AppSpec, type TestApp, claimsTakenOver, recordingHandlers, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { claimStore, heldClaims, moduleKeys, ownerOf, watchReservations } from '../support/internals.js';
import { specResources } from '../support/spec-resources.js';

/**
 * A Worker of the app reserves the failure of each flow job it starts, and runs the
 * handlers the moment the job fails, claiming them as they run. These are the ways that
 * could run a handler twice (another path claiming it meanwhile) or never (the reserver
 * dying before its claim).
 */
describe("a Worker's reservations", () => {
  const prefix = uniquePrefix('reservations');
  const keys = moduleKeys(prefix);
  const handlers = [recordingHandlers({ parent: 'orders', child: 'payments' })];
  const queues = ['orders', 'payments'];
  const spec = specResources(prefix);

  const start = (app: Omit<AppSpec, 'prefix' | 'handlers'>) => spec.start({ handlers, ...app });
  const reservations = () => spec.redis.keys(`${keys.reservationPrefix}*`);
  const jobIds = (app: TestApp, handler: string) => app.log.of(handler).map((event) => event.jobId);
  /** An order whose charge fails (failParentOnFailure) after `sleepMs`. */
  const order = (sleepMs: number) =>
    spec.redis.flows.add({
      name: 'order',
      queueName: 'orders',
      children: [{ name: 'charge', queueName: 'payments', data: { fail: true, sleepMs }, opts: { failParentOnFailure: true } }],
    });
  const takenOver = (app: TestApp) => claimsTakenOver(app.logger.lines.map((line) => line.message).join('\n'));

  test('a charge failing early runs its handlers on the reservation, one failing after two thirds of leaseMs claims first; each runs once', async () => {
    // A 1.5 s lease: a failure within 1 s of its job's start runs its handlers before claiming
    // them, a later one claims first (as the reserver: what others took in its name is its own).
    const app = await start({ processors: queues, options: { queues, leaseMs: 1500 } });
    const paths = watchReservations(app.app);
    const [early, late] = await Promise.all([order(50), order(1300)]);
    const [earlyCharge, lateCharge] = [early, late].map((flow) => flow.children?.[0].job as Job);
    const reservation = keys.reservation({ queueName: 'payments', jobId: lateCharge.id as string, attemptsStarted: 1 });
    await waitUntil('the late charge reserved as it runs', async () => (await spec.redis.redis.exists(reservation)) === 1);
    expect(await spec.redis.redis.get(reservation)).toBe(ownerOf(app.app));

    await waitUntil('every handler ran', () => app.log.runs.length >= 4);
    await settle(app);
    expect(paths.reserved).toEqual(
      expect.arrayContaining([earlyCharge, lateCharge].map((charge) => ({ queueName: 'payments', jobId: charge.id, attemptsStarted: 1 }))),
    );
    expect([paths.used.get(`payments:${earlyCharge.id}`), paths.used.get(`payments:${lateCharge.id}`)]).toEqual(['run-now', 'claim-first']);
    expect(jobIds(app, 'child').sort()).toEqual([earlyCharge.id, lateCharge.id].sort());
    expect(jobIds(app, 'parent').sort()).toEqual([early.job.id, late.job.id].sort());
    // The runs were recorded as claims (now done), and that ended every reservation, the late one's too.
    expect(await reservations()).toEqual([]);
    const occurrences = await spec.redis.keys(keys.occurrence(`payments:*`));
    expect(await Promise.all(occurrences.map((key) => spec.redis.redis.hget(key, 'h:child-failed:RecordingHandlers.child')))).toEqual(['done', 'done']);
    expect(await heldClaims(spec.redis.redis, keys)).toEqual([]);
  });

  test('the reserving replica runs the handlers on its reservations while another claims every failure as its stream reads it: each handler runs once', async () => {
    // `workers` runs every Worker, so its stream only backs them up; `reader` has no Worker:
    // its stream is its primary source and claims each failure as it reads it, racing the
    // reserving Worker's handlers.
    const [workers, reader] = await Promise.all([start({ processors: queues, options: { queues } }), start({ options: { queues } })]);
    const paths = watchReservations(workers.app);
    // Each charge fails 20 ms into its run: its reservation is in Redis by then.
    const flows = await Promise.all(Array.from({ length: 50 }, () => order(20)));
    await waitUntil('100 handler runs', () => workers.log.runs.length + reader.log.runs.length >= 100);
    await settle(workers, reader);
    const charges = flows.map((f) => f.children?.[0].job.id as string);
    expect(charges.map((id) => paths.used.get(`payments:${id}`))).toEqual(charges.map(() => 'run-now'));
    const ran = (handler: string) => [...jobIds(workers, handler), ...jobIds(reader, handler)].sort();
    expect(ran('parent')).toEqual(flows.map((f) => f.job.id).sort());
    expect(ran('child')).toEqual(charges.sort());
    expect(await heldClaims(spec.redis.redis, keys)).toEqual([]);
  });

  test('a replica that reserved failures and died before claiming them: another runs each handler once, after each reservation ends', async () => {
    // The replica that dies: its Worker reserves each charge as it starts it (for 2 s), then
    // fails it and is gone. Its orders Worker fails the parents (no reservation).
    const dead = await claimStore(spec.redis.connection(), keys, 'dead-replica', 2000, 60_000);
    const reserved: Promise<boolean>[] = [];
    spec.worker('payments', async (job) => {
      const taken = dead.reserve({ queueName: 'payments', jobId: job.id as string, attemptsStarted: job.attemptsStarted });
      reserved.push(taken);
      await taken;
      throw new Error('charge failed');
    });
    spec.worker('orders');
    const app = await start({ options: { queues, sources: ['stream'], leaseMs: 1000 } });
    const flows = await spec.redis.failOrders(10);

    await waitUntil('20 handler runs', () => app.log.runs.length >= 20);
    await settle(app);
    expect(await Promise.all(reserved)).toEqual(flows.map(() => true));
    expect(jobIds(app, 'parent').sort()).toEqual(flows.map((f) => f.job.id).sort());
    expect(jobIds(app, 'child').sort()).toEqual(flows.map((f) => f.children?.[0].job.id).sort());
    // Every charge's claim was taken in the dead replica's name, and taken over when its reservation ended.
    expect(takenOver(app)).toBe(10);
    expect(await heldClaims(spec.redis.redis, keys)).toEqual([]);
  });

  test('an instance closing with flow jobs still running gives their reservations back: another replica handles their failures at once', async () => {
    // The default 30 s lease: had the reservation stayed, the failure would wait for it.
    const closing = await start({ processors: queues, options: { queues } });
    const other = await start({ processors: ['orders'], options: { queues } });
    const flow = await order(500);
    const charge = flow.children?.[0].job as Job;
    await waitUntil('the charge reserved as it runs', async () => (await spec.redis.redis.exists(keys.reservation({ queueName: 'payments', jobId: charge.id as string, attemptsStarted: 1 }))) === 1);
    await closing.close(); // its Worker finishes the charge, which fails unwatched

    await waitUntil('both handlers ran', () => other.log.runs.length >= 2);
    await settle(other);
    expect(jobIds(other, 'child')).toEqual([charge.id]);
    expect(jobIds(other, 'parent')).toEqual([flow.job.id]);
    expect(closing.log.runs).toEqual([]);
  });

  test('with workerReservations: false, nothing is reserved, and each handler still runs once', async () => {
    const app = await start({ processors: queues, options: { queues, workerReservations: false } });
    const paths = watchReservations(app.app);
    const flow = await order(50);
    await waitUntil('both handlers ran', () => app.log.runs.length >= 2);
    await settle(app);
    expect(jobIds(app, 'child')).toEqual([flow.children?.[0].job.id]);
    expect(jobIds(app, 'parent')).toEqual([flow.job.id]);
    // The Worker started both jobs and reported both failures, and reserved neither.
    expect(paths.reserved).toEqual([]);
    expect([...paths.used.values()]).toEqual(['none', 'none']);
    expect(await reservations()).toEqual([]);
    expect(await heldClaims(spec.redis.redis, keys)).toEqual([]);
  });
});
