import { metrics, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';

/** How often the metric reader collects, as a Prometheus scrape or an OTLP push would. */
const COLLECT_EVERY_MS = 1000;

/** Exports to nowhere: the cost measured is the SDK's (recording, aggregating, batching), not a network's. */
const discard = {
  export(_items: unknown, done: (result: { code: ExportResultCode }) => void) {
    done({ code: ExportResultCode.SUCCESS });
  },
  forceFlush: async () => undefined,
  shutdown: async () => undefined,
};

/**
 * The OpenTelemetry SDK as a service registers it before `NestFactory.create()`: metrics
 * collected every second (the module's observable gauges read Redis then), spans through a
 * BatchSpanProcessor, every trace sampled (the SDK's default), or the share that
 * BENCH_OTEL_SAMPLE gives (0.1: a tenth, with a parent-based ratio sampler). For the
 * `module-otel` variant: what metrics and traces cost.
 */
export function registerTelemetrySdk(): () => Promise<void> {
  const meterProvider = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: discard, exportIntervalMillis: COLLECT_EVERY_MS })],
  });
  metrics.setGlobalMeterProvider(meterProvider);
  const ratio = process.env.BENCH_OTEL_SAMPLE ? Number(process.env.BENCH_OTEL_SAMPLE) : undefined;
  const sampler = ratio === undefined ? undefined : new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  const tracerProvider = new BasicTracerProvider({ sampler, spanProcessors: [new BatchSpanProcessor(discard)] });
  trace.setGlobalTracerProvider(tracerProvider);
  return async () => {
    await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
    metrics.disable();
    trace.disable();
  };
}
