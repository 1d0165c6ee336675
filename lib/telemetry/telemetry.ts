import type { Attributes, Context, Counter, Histogram, Link, Meter, ObservableResult, Span, Tracer } from '@opentelemetry/api';
import { parseOccurrenceId } from '../claims/formats.js';
import type { FailureOccurrence } from '../classifier/failure-occurrence.js';
import type { FlowFailureEvent } from '../interfaces/failure-events.interface.js';
import { describeError } from '../util/describe-error.js';

/** The meter's and the tracer's name. */
export const INSTRUMENTATION_NAME = 'nestjs-flow-failure';

/** How a handler attempt ended, as `flow_failure.handler.runs` counts it. */
export type AttemptOutcome = 'ok' | 'error' | 'timeout' | 'dead';

/** What the observable gauges read when a metric reader collects. */
export interface ObservedState {
  /** Runs queued or running in this instance. */
  backlog(): number;
  /** Dead letters by handler (`Class.method`). */
  deadLettersByHandler(): Promise<Map<string, number>>;
  /** The declared handlers (`Class.method`). */
  handlers(): readonly string[];
  /** Entries of each watched stream not yet read by the consumer group. */
  streamLag(): Promise<Map<string, number>>;
}

/** One handler attempt as a span; ended with its outcome. */
export interface AttemptSpan {
  end(outcome: AttemptOutcome, error?: unknown): void;
}

type OtelApi = typeof import('@opentelemetry/api');

/**
 * Bucket bounds (s) of the two histograms, given to the SDK as advice: its default bounds
 * (0, 5, 10 ... 10000) suit milliseconds and would put every observation in one bucket.
 * A handler runs from milliseconds up to handlerTimeoutMs (60 s by default). A delivery
 * takes about a millisecond from a Worker (the bench's p50: 0.9 ms), and up to the
 * settled wait (settledTimeoutMs, 10 minutes by default) or a catch-up's length.
 */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const DELAY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * Series by key, each with its attributes (built once) and a count. A histogram records
 * with the series' attributes, allocating none; a counter is counted here and reported at
 * each collection through an observable counter: one map lookup, where a counter's `add`
 * hashes its attributes on every call. The keys are few (handlers x outcomes, queues x
 * kinds x sources), so the map stays small.
 */
class Series {
  private readonly byKey = new Map<string, { attributes: Attributes; count: number }>();

  get(key: string, attributes: () => Attributes): { attributes: Attributes; count: number } {
    let series = this.byKey.get(key);
    if (!series) this.byKey.set(key, (series = { attributes: attributes(), count: 0 }));
    return series;
  }

  observe(result: ObservableResult): void {
    for (const { attributes, count } of this.byKey.values()) result.observe(count, attributes);
  }
}

/**
 * Metrics and traces through the OpenTelemetry API, an optional peer: without it the
 * module records nothing, and without an SDK registered the API's instruments are no-ops.
 * The instruments are made as the app starts: register the SDK before it does.
 */
export class Telemetry {
  /** Counted: flow_failure.failures. */
  private readonly failures = new Series();
  /** Counted (flow_failure.handler.runs), and the attributes of flow_failure.handler.duration. */
  private readonly runs = new Series();
  /** The attributes of flow_failure.delivery.delay. */
  private readonly delays = new Series();
  private readonly duration?: Histogram;
  private readonly delay?: Histogram;
  private readonly gaps?: Counter;
  private readonly tracer?: Tracer;
  private readonly meter?: Meter;

  private constructor(private readonly api?: OtelApi) {
    if (!api) return;
    this.tracer = api.trace.getTracer(INSTRUMENTATION_NAME);
    const meter = api.metrics.getMeter(INSTRUMENTATION_NAME);
    // No SDK registered: the API's no-op meter, for good (its instruments never reach a
    // provider registered later). Counting series for it cost a catch-up about 2 % of its CPU.
    if (meter === api.createNoopMeter()) return;
    this.meter = meter;
    meter
      .createObservableCounter('flow_failure.failures', {
        description: 'Failure occurrences, each counted once among replicas (a job failing as parent and as child counts for each kind)',
      })
      .addCallback((result) => this.failures.observe(result));
    meter.createObservableCounter('flow_failure.handler.runs', { description: 'Handler attempts, by outcome' }).addCallback((result) => this.runs.observe(result));
    this.duration = meter.createHistogram('flow_failure.handler.duration', {
      description: 'Handler attempt duration',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.delay = meter.createHistogram('flow_failure.delivery.delay', {
      description: "From the failed job's finishedOn to its handler's start, a settled handler's wait for the parent's children included",
      unit: 's',
      advice: { explicitBucketBoundaries: DELAY_BUCKETS },
    });
    this.gaps = meter.createCounter('flow_failure.stream.gaps', { description: 'Ranges of an events stream trimmed before the group read them' });
  }

  /** Loads the OpenTelemetry API if the app has it installed. */
  static async load(): Promise<Telemetry> {
    try {
      return new Telemetry(await import('@opentelemetry/api'));
    } catch {
      return new Telemetry();
    }
  }

  /** An occurrence this instance recorded first, among all replicas. */
  recorded(occurrence: FailureOccurrence): void {
    if (!this.meter) return;
    const { parentFailed, childFailed, queueName: queue, source } = occurrence;
    if (parentFailed) {
      const { causedByChild } = parentFailed;
      this.failures.get(`parent-failed\0${queue}\0${causedByChild}\0${source}`, () => ({ kind: 'parent-failed', queue, caused_by_child: causedByChild, source })).count++;
    }
    if (childFailed) {
      const { parentPolicy } = childFailed;
      this.failures.get(`child-failed\0${queue}\0${parentPolicy}\0${source}`, () => ({ kind: 'child-failed', queue, parent_policy: parentPolicy, source })).count++;
    }
  }

  /** A handler attempt begins: its delivery delay is recorded, and a span opened (linked to the failed job's trace, if it has one). */
  attempt(handler: string, event: FlowFailureEvent, attempt: number): AttemptSpan {
    const finishedOn = event.job?.finishedOn ?? parseOccurrenceId(event.id)?.finishedOn;
    if (this.delay && attempt === 1 && finishedOn) {
      const { kind, queueName: queue, source } = event;
      this.delay.record(Math.max(0, Date.now() - finishedOn) / 1000, this.delays.get(`${kind}\0${queue}\0${source}`, () => ({ kind, queue, source })).attributes);
    }
    const started = performance.now();
    const span = this.startSpan(handler, event, attempt);
    return {
      end: (outcome, error) => {
        if (this.meter) {
          const series = this.runs.get(`${handler}\0${outcome}`, () => ({ handler, outcome }));
          series.count++;
          this.duration?.record((performance.now() - started) / 1000, series.attributes);
        }
        if (!span || !this.api) return;
        span.setAttribute('flow_failure.outcome', outcome);
        if (outcome !== 'ok') {
          if (error instanceof Error) span.recordException(error);
          span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: describeError(error) });
        }
        span.end();
      },
    };
  }

  /** A trimmed range of a stream, found once. */
  gapFound(queue: string): void {
    this.gaps?.add(1, { queue });
  }

  /** The observable gauges, read at each collection. */
  observe(state: ObservedState): void {
    if (!this.meter) return;
    this.meter
      .createObservableGauge('flow_failure.backlog', { description: 'Handler runs queued or running in this instance' })
      .addCallback((result) => result.observe(state.backlog()));
    this.meter
      .createObservableGauge('flow_failure.dead_letters', { description: 'Dead letters, by handler (of the first 1000); 0 for a declared handler with none' })
      .addCallback(async (result) => {
        // A series for each declared handler from the start, so that alert rules need no absent().
        const counts = new Map([...state.handlers().map((handler): [string, number] => [handler, 0]), ...(await state.deadLettersByHandler())]);
        for (const [handler, count] of counts) result.observe(count, { handler });
      });
    this.meter
      .createObservableGauge('flow_failure.stream.lag', { description: "Entries of a queue's events stream not yet read by the consumer group" })
      .addCallback(async (result) => {
        for (const [queue, lag] of await state.streamLag()) result.observe(lag, { queue });
      });
  }

  private startSpan(handler: string, event: FlowFailureEvent, attempt: number): Span | undefined {
    if (!this.tracer || !this.api) return undefined;
    const attributes: Attributes = {
      'flow_failure.handler': handler,
      'flow_failure.queue': event.queueName,
      'flow_failure.job_id': event.jobId,
      'flow_failure.occurrence_id': event.id,
      'flow_failure.kind': event.kind,
      'flow_failure.attempt': attempt,
    };
    const links = this.linkToJob(event);
    return this.tracer.startSpan('flow_failure.handle', { attributes, links }, this.api.ROOT_CONTEXT);
  }

  /** The failed job's own trace, when BullMQ's telemetry stored its context with the job (`opts.telemetry.metadata`). */
  private linkToJob(event: FlowFailureEvent): Link[] {
    const metadata = event.job?.opts.telemetry?.metadata;
    if (!metadata || !this.api) return [];
    try {
      const carrier = JSON.parse(metadata) as Record<string, string>;
      const context: Context = this.api.propagation.extract(this.api.ROOT_CONTEXT, carrier);
      const spanContext = this.api.trace.getSpanContext(context);
      return spanContext && this.api.isSpanContextValid(spanContext) ? [{ context: spanContext }] : [];
    } catch {
      return [];
    }
  }
}
