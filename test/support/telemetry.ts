import { metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AggregationTemporality, type DataPoint, MeterProvider, MetricReader, type Histogram } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { context } from '@opentelemetry/api';

/** A reader the test collects from when it wants, instead of on a timer. */
class OnDemandReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** One data point, flattened for assertions. */
export interface Point {
  metric: string;
  attributes: Record<string, unknown>;
  /** A counter's or gauge's value; a histogram's count. */
  value: number;
  /** A histogram's buckets: upper bounds, and the count of each bucket (one more than bounds: the last is above them all). */
  buckets?: { boundaries: number[]; counts: number[] };
}

/** An OpenTelemetry SDK registered for this test file: an in-memory metric reader and span exporter, W3C propagation. */
export function installTelemetry() {
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  trace.setGlobalTracerProvider(tracerProvider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  return {
    async points(): Promise<Point[]> {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.flatMap((scope) =>
        scope.metrics.flatMap((metric) =>
          (metric.dataPoints as DataPoint<number | Histogram>[]).map((point) => ({
            metric: metric.descriptor.name,
            attributes: { ...point.attributes },
            value: typeof point.value === 'number' ? point.value : point.value.count,
            ...(typeof point.value === 'number' ? {} : { buckets: point.value.buckets }),
          })),
        ),
      );
    },
    spans(): ReadableSpan[] {
      return spans.getFinishedSpans();
    },
    async uninstall(): Promise<void> {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
      contextManager.disable();
      metrics.disable();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/** The sum of a metric's points whose attributes include `match`. */
export function total(points: readonly Point[], metric: string, match: Record<string, unknown> = {}): number {
  return points
    .filter((p) => p.metric === metric && Object.entries(match).every(([key, value]) => p.attributes[key] === value))
    .reduce((sum, p) => sum + p.value, 0);
}
