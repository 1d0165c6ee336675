import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { SpanStatusCode } from '@opentelemetry/api';
import { FlowProducer } from 'bullmq';
import { BullMQOtel } from 'bullmq-otel';
import { type ChildFailedEvent, type HandlerContext, OnChildFailed, OnParentFailed, type ParentFailedEvent } from 'nestjs-flow-failure';
import { type TestApp, TestRedis, redisConnection, settle, startApp, uniquePrefix, waitUntil } from '../support/harness.js';
import { type Point, installTelemetry, total } from '../support/telemetry.js';

const otel = installTelemetry();

@Injectable()
class Compensation {
  @OnParentFailed('orders')
  undo(_event: ParentFailedEvent) {}
}

@Injectable()
class Alerts {
  private readonly seen = new Set<string>();

  @OnChildFailed('payments')
  flaky(event: ChildFailedEvent) {
    if (this.seen.has(event.id)) return;
    this.seen.add(event.id);
    throw new Error('pager down');
  }
}

@Injectable()
class Ledger {
  @OnChildFailed('stock')
  book(_event: ChildFailedEvent) {
    throw new Error('ledger down');
  }
}

@Injectable()
class Mailer {
  /** Never settles: each attempt times out. */
  @OnChildFailed('mail')
  wait(_event: ChildFailedEvent, _context: HandlerContext) {
    return new Promise<void>(() => undefined);
  }
}

/** Every instrument and span, checked against known failures handled by two replicas. */
describe('OpenTelemetry metrics and traces', () => {
  const prefix = uniquePrefix('otel');
  const queues = ['orders', 'payments', 'stock', 'mail', 'batches'];
  const handlers = [Compensation, Alerts, Ledger, Mailer];
  const options = { handlerAttempts: 2, handlerBackoffMs: 10, handlerTimeoutMs: 300 };
  let redis: TestRedis;
  let apps: TestApp[] = [];
  let tracedFlows: FlowProducer;
  let orderId: string;

  beforeAll(async () => {
    redis = new TestRedis(prefix);
    apps = [
      await startApp({ prefix, processors: queues, handlers, options }),
      await startApp({ prefix, withoutBull: true, handlers, options: { ...options, queues } }),
    ];
    // The order comes from a producer with BullMQ's telemetry: its trace context travels with the jobs.
    tracedFlows = new FlowProducer({ connection: redisConnection(), prefix, telemetry: new BullMQOtel({ tracerName: 'shop' }) });
    const order = await tracedFlows.add({
      name: 'place-order',
      queueName: 'orders',
      // BullMQ stores a flow node's trace context only when the node has options.
      opts: {},
      children: [{ name: 'charge', queueName: 'payments', data: { fail: true }, opts: { failParentOnFailure: true } }],
    });
    orderId = order.job.id as string;
    await redis.flows.add({
      name: 'batch',
      queueName: 'batches',
      children: [
        { name: 'reserve', queueName: 'stock', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } },
        { name: 'notify', queueName: 'mail', data: { fail: true }, opts: { ignoreDependencyOnFailure: true } },
      ],
    });
    await waitUntil('two dead letters', async () => (await apps[0].flowFailure.countDeadLetters()) === 2);
    await settle(...apps);
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await tracedFlows?.close();
    await redis?.close();
    await otel.uninstall();
  });

  test('flow_failure.failures counts each occurrence once among the replicas, with its attributes', async () => {
    const points = await otel.points();
    expect(total(points, 'flow_failure.failures')).toBe(4);
    expect(total(points, 'flow_failure.failures', { kind: 'parent-failed', queue: 'orders', caused_by_child: true })).toBe(1);
    expect(total(points, 'flow_failure.failures', { kind: 'child-failed', queue: 'payments', parent_policy: 'fail' })).toBe(1);
    expect(total(points, 'flow_failure.failures', { kind: 'child-failed', queue: 'stock', parent_policy: 'ignore' })).toBe(1);
    expect(total(points, 'flow_failure.failures', { kind: 'child-failed', queue: 'mail', parent_policy: 'ignore' })).toBe(1);
    for (const point of points.filter((p) => p.metric === 'flow_failure.failures')) expect(['worker', 'stream', 'sweep']).toContain(point.attributes.source);
  });

  test('flow_failure.handler.runs, .duration and delivery.delay describe every attempt', async () => {
    const points = await otel.points();
    const runs = (handler: string, outcome: string) => total(points, 'flow_failure.handler.runs', { handler, outcome });
    expect(runs('Compensation.undo', 'ok')).toBe(1);
    expect([runs('Alerts.flaky', 'error'), runs('Alerts.flaky', 'ok')]).toEqual([1, 1]);
    expect([runs('Ledger.book', 'error'), runs('Ledger.book', 'dead')]).toEqual([1, 1]);
    expect([runs('Mailer.wait', 'timeout'), runs('Mailer.wait', 'dead')]).toEqual([1, 1]);
    expect(total(points, 'flow_failure.handler.runs')).toBe(7);
    expect(total(points, 'flow_failure.handler.duration')).toBe(7);
    expect(total(points, 'flow_failure.delivery.delay')).toBe(4);
  });

  test('the histograms export buckets in seconds: milliseconds and a 300 ms timeout told apart, bounds up to 60 s and 10 min', async () => {
    const points = await otel.points();
    /** The [lower, upper] bounds (s) of the buckets that hold observations of a metric's points whose attributes include `match`. */
    const filled = (metric: string, match: Record<string, unknown>) =>
      points
        .filter((p): p is Point & Required<Pick<Point, 'buckets'>> => p.metric === metric && p.buckets !== undefined)
        .filter((p) => Object.entries(match).every(([key, value]) => p.attributes[key] === value))
        .flatMap(({ buckets: { boundaries, counts } }) =>
          counts.flatMap((count, i) => (count > 0 ? [[i === 0 ? -Infinity : boundaries[i - 1], i < boundaries.length ? boundaries[i] : Infinity]] : [])),
        );
    // A handler that returns at once, and one that times out after handlerTimeoutMs (300 ms).
    const undo = filled('flow_failure.handler.duration', { handler: 'Compensation.undo' });
    expect(undo.length).toBeGreaterThan(0);
    for (const [, upper] of undo) expect(upper).toBeLessThanOrEqual(0.1);
    const timeouts = filled('flow_failure.handler.duration', { handler: 'Mailer.wait', outcome: 'timeout' });
    expect(timeouts.length).toBeGreaterThan(0);
    for (const [lower, upper] of timeouts) {
      expect(lower).toBeGreaterThanOrEqual(0.25);
      expect(upper).toBeLessThanOrEqual(1);
    }
    // The order's failure reached its handler within a second.
    const delay = filled('flow_failure.delivery.delay', { kind: 'parent-failed', queue: 'orders' });
    expect(delay.length).toBeGreaterThan(0);
    for (const [, upper] of delay) expect(upper).toBeLessThanOrEqual(1);
    // The top bounds: handlerTimeoutMs (60 s) and settledTimeoutMs (10 min) by default.
    const topBound = (metric: string) => [...new Set(points.filter((p) => p.metric === metric).map((p) => p.buckets?.boundaries.at(-1)))];
    expect(topBound('flow_failure.handler.duration')).toEqual([60]);
    expect(topBound('flow_failure.delivery.delay')).toEqual([600]);
  });

  test('the gauges: backlog, dead letters per handler (0 for one with none), stream lag', async () => {
    const points = await otel.points();
    expect(total(points, 'flow_failure.backlog')).toBe(0);
    const deadLetters = points.filter((p) => p.metric === 'flow_failure.dead_letters').map((p) => [p.attributes.handler, p.value]);
    expect(deadLetters.sort()).toEqual([
      ['Alerts.flaky', 0],
      ['Compensation.undo', 0],
      ['Ledger.book', 1],
      ['Mailer.wait', 1],
    ]);
    const lags = points.filter((p) => p.metric === 'flow_failure.stream.lag');
    expect(lags.map((p) => p.attributes.queue).sort()).toEqual([...queues].sort());
    expect(lags.every((p) => p.value === 0)).toBe(true);
  });

  test('one span per attempt, with its attributes, an error status on a throw, and a link to the traced job', () => {
    const spans = otel.spans().filter((span) => span.name === 'flow_failure.handle');
    expect(spans).toHaveLength(7);
    const undo = spans.find((span) => span.attributes['flow_failure.handler'] === 'Compensation.undo');
    expect(undo?.attributes).toMatchObject({
      'flow_failure.queue': 'orders',
      'flow_failure.job_id': orderId,
      'flow_failure.kind': 'parent-failed',
      'flow_failure.attempt': 1,
      'flow_failure.outcome': 'ok',
    });
    expect(String(undo?.attributes['flow_failure.occurrence_id'])).toMatch(new RegExp(`^orders:${orderId}:\\d+$`));
    // The order's own trace (from the producer's BullMQ telemetry) is linked.
    const producer = otel.spans().find((span) => span.name.startsWith('addFlow') || span.name.startsWith('add'));
    expect(undo?.links).toHaveLength(1);
    expect(undo?.links[0].context.traceId).toBe(producer?.spanContext().traceId);

    const failed = spans.filter((span) => span.attributes['flow_failure.handler'] === 'Ledger.book');
    expect(failed.map((span) => span.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.ERROR]);
    expect(failed[0].events.find((event) => event.name === 'exception')?.attributes?.['exception.message']).toBe('ledger down');
  });

  test('flow_failure.stream.gaps counts a trimmed range once', async () => {
    await Promise.all(apps.map((app) => app.close()));
    const flow = await redis.flows.add({ name: 'batch', queueName: 'batches', children: [{ name: 'reserve', queueName: 'stock', data: { fail: true } }] });
    const worker = redis.worker('stock');
    await waitUntil('the failure', async () => (await flow.children?.[0].job.getState()) === 'failed');
    await worker.close();
    await redis.redis.xtrim(`${prefix}:stock:events`, 'MAXLEN', 0);
    apps = [await startApp({ prefix, withoutBull: true, handlers, options: { ...options, queues } })];
    expect(total(await otel.points(), 'flow_failure.stream.gaps', { queue: 'stock' })).toBe(1);
  });
});
