import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { FlowFailureModule } from 'nestjs-flow-failure';
import { ChildFailureRecorder } from './failures/child-failure-recorder.js';
import { IncidentLog } from './failures/incident-log.js';
import { OrderCompensation } from './failures/order-compensation.js';
import { MonitoringModule } from './monitoring/monitoring.module.js';
import { NotificationsProcessor } from './notifications/notifications.processor.js';
import { OrderBook } from './orders/order-book.js';
import { ORDER_FLOWS, OrderPlacement } from './orders/order-placement.service.js';
import { OrderStatusService } from './orders/order-status.service.js';
import { OrdersController } from './orders/orders.controller.js';
import { OrdersProcessor } from './orders/orders.processor.js';
import { PaymentsProcessor } from './payments/payments.processor.js';
import { PaymentsService } from './payments/payments.service.js';
import { StockProcessor } from './stock/stock.processor.js';
import { StockService } from './stock/stock.service.js';

export interface OrderServiceConfig {
  redis: { host: string; port: number };
  /** BullMQ's key prefix: every key of the queues, and of FlowFailureModule, starts with it. */
  prefix: string;
  /** The OpenTelemetry SDK's Prometheus reader, served at GET /metrics. */
  metrics: PrometheusExporter;
}

@Module({})
export class OrderServiceModule {
  static forRoot(config: OrderServiceConfig): DynamicModule {
    return {
      module: OrderServiceModule,
      imports: [
        BullModule.forRoot({ connection: config.redis, prefix: config.prefix }),
        BullModule.registerQueue({ name: 'orders' }, { name: 'payments' }, { name: 'stock' }, { name: 'notifications' }),
        BullModule.registerFlowProducer({ name: ORDER_FLOWS }),
        // No options needed: connection and prefix come from BullModule.forRoot(), and the
        // queues to watch from the @Processor classes and the handlers' decorators.
        FlowFailureModule.forRoot(),
        MonitoringModule.forRoot(config.metrics),
      ],
      controllers: [OrdersController],
      providers: [
        OrderBook,
        OrderPlacement,
        OrderStatusService,
        PaymentsService,
        StockService,
        IncidentLog,
        OrdersProcessor,
        PaymentsProcessor,
        StockProcessor,
        NotificationsProcessor,
        OrderCompensation,
        ChildFailureRecorder,
      ],
    };
  }
}
