import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Req, Res } from '@nestjs/common';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';

/** GET /metrics: the OpenTelemetry metrics (FlowFailureModule's `flow_failure_*` among them) for Prometheus to scrape. */
@Controller('metrics')
export class MetricsController {
  constructor(private readonly prometheus: PrometheusExporter) {}

  @Get()
  scrape(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    this.prometheus.getMetricsRequestHandler(request, response);
  }
}
