import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { BullBoardModule } from '@bull-board/nestjs';
import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { deadLetterQueueName } from 'nestjs-flow-failure';
import { FlowFailureHealthIndicator } from 'nestjs-flow-failure/terminus';
import { HealthController } from './health.controller.js';
import { MetricsController } from './metrics.controller.js';

/** The queues bull-board shows: the order's, and FlowFailureModule's dead letters (handlers that kept failing). */
const BOARD_QUEUES = ['orders', 'payments', 'stock', 'notifications', deadLetterQueueName()];

/** What an operator looks at, over HTTP: /metrics, /health and bull-board at /queues. */
@Module({
  imports: [
    TerminusModule,
    // The dead letters are failed jobs of a BullMQ queue: registered here like any other
    // queue (same connection and prefix), so that bull-board can list, retry and remove them.
    BullModule.registerQueue({ name: deadLetterQueueName() }),
    // bull-board can retry and remove jobs: put authentication in front of it
    // (its `middleware` option) before you expose it beyond your machine.
    BullBoardModule.forRoot({ route: '/queues', adapter: ExpressAdapter }),
    BullBoardModule.forFeature(...BOARD_QUEUES.map((name) => ({ name, adapter: BullMQAdapter }))),
  ],
  controllers: [MetricsController, HealthController],
  providers: [FlowFailureHealthIndicator],
})
export class MonitoringModule {
  /** `prometheus`: the metric reader of the OpenTelemetry SDK, registered before the app was created. */
  static forRoot(prometheus: PrometheusExporter): DynamicModule {
    return { module: MonitoringModule, providers: [{ provide: PrometheusExporter, useValue: prometheus }] };
  }
}
