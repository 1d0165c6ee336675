import { metrics, trace } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface SampleTelemetry {
  /** The metric reader that MetricsController serves at GET /metrics. */
  prometheus: PrometheusExporter;
  /** The spans ended so far. */
  spans: InMemorySpanExporter;
  shutdown(): Promise<void>;
}

/**
 * The OpenTelemetry SDK, registered globally. Call it before `NestFactory.create()`:
 * FlowFailureModule makes its instruments as the app starts, from whatever is registered then.
 */
export function startTelemetry(): SampleTelemetry {
  // Scraped through the app's own HTTP server, rather than a server of its own on port 9464.
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [prometheus] });
  metrics.setGlobalMeterProvider(meterProvider);
  // In memory so that the sample can count them: a real service exports spans with
  // OTLP (@opentelemetry/exporter-trace-otlp-http) through a BatchSpanProcessor, or
  // prints them with the ConsoleSpanExporter of @opentelemetry/sdk-trace-base.
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  trace.setGlobalTracerProvider(tracerProvider);
  return {
    prometheus,
    spans,
    async shutdown() {
      await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
      metrics.disable();
      trace.disable();
    },
  };
}

/** The handler runs the module traced (spans `flow_failure.handle`), by handler and outcome. */
export function traceLine(spans: InMemorySpanExporter): string {
  const runs = spans.getFinishedSpans().filter((span) => span.name === 'flow_failure.handle');
  const counts = new Map<string, number>();
  for (const { attributes } of runs) {
    const key = `${String(attributes['flow_failure.handler'])} ${String(attributes['flow_failure.outcome'])}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const byHandler = [...counts].sort().map(([key, count]) => `${count} x ${key}`);
  return `traces: ${runs.length} spans "flow_failure.handle": ${byHandler.join(', ') || 'none'}`;
}
