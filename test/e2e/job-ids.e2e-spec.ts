import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { ChildFailedEvent, LiveSource, ParentFailedEvent } from 'nestjs-flow-failure';
import { SOURCE_MODES, type TestApp, TestRedis, recordingHandlers, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';

/** BullMQ accepts any custom job id but an integer; ':' and '::' among them. */
describe.each(SOURCE_MODES)('job ids with colons (sources: %s)', (...sources: LiveSource[]) => {
  const prefix = uniquePrefix('ids');
  let redis: TestRedis;
  let app: TestApp;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    app = await startApp({
      prefix,
      processors: ['orders', 'payments', 'imports'],
      handlers: [recordingHandlers({ parent: true, child: { parentQueueName: 'orders' } })],
      options: { sources },
    });
  });

  afterAll(async () => {
    await app?.close();
    await redis?.close();
  });

  test('every event field names the right queue and id', async () => {
    await redis.flows.add({
      name: 'place-order',
      queueName: 'orders',
      opts: { jobId: 'order:42:main' },
      children: [
        {
          name: 'charge',
          queueName: 'payments',
          opts: { jobId: 'pay:42:card', failParentOnFailure: true },
          children: [{ name: 'import', queueName: 'imports', data: { fail: true, reason: 'bad row' }, opts: { jobId: 'imp::42', failParentOnFailure: true } }],
        },
      ],
    });
    // orders and payments fail as parents; payments as a child of orders (imports' parent is not an order).
    await waitUntil('three events', () => app.log.runs.length >= 3);
    await settle(app);

    const parents = app.log.of('parent') as ParentFailedEvent[];
    const children = app.log.of('child') as ChildFailedEvent[];
    expect(parents.map((e) => `${e.queueName}/${e.jobId}`).sort()).toEqual(['orders/order:42:main', 'payments/pay:42:card']);
    expect(children.map((e) => `${e.queueName}/${e.jobId}`)).toEqual(['payments/pay:42:card']);

    const order = parents.find((e) => e.queueName === 'orders') as ParentFailedEvent;
    expect(order.id).toMatch(/^orders:order:42:main:\d+$/);
    expect(order.failedChild).toEqual({ queueName: 'payments', jobId: 'pay:42:card', key: `${prefix}:payments:pay:42:card` });
    expect(order.rootCause).toMatchObject({ queueName: 'imports', jobId: 'imp::42', key: `${prefix}:imports:imp::42`, failedReason: 'bad row' });
    const payment = parents.find((e) => e.queueName === 'payments') as ParentFailedEvent;
    expect(payment.failedChild).toEqual({ queueName: 'imports', jobId: 'imp::42', key: `${prefix}:imports:imp::42` });
    expect(payment.rootCause).toMatchObject({ queueName: 'imports', jobId: 'imp::42' });

    expect(children[0]).toMatchObject({
      parent: { queueName: 'orders', jobId: 'order:42:main', key: `${prefix}:orders:order:42:main` },
      parentPolicy: 'fail',
    });
    expect(children[0].id).toBe(payment.id);
  });
});
