import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions, Transport } from '@nestjs/microservices';
import { OrderClient } from './client/order-client.js';
import { placeSampleOrders } from './client/place-sample-orders.js';
import { deleteKeysWithPrefix } from './delete-run-keys.js';
import { RUN_ID } from './order-messages.js';
import { OrderServiceModule } from './order-service/order-service.module.js';
import { HOW_TO_GET_REDIS, type SampleRedis, findOrStartRedis } from './sample-redis.js';
import { startTelemetry, traceLine } from './telemetry.js';

/** `npm run sample -- --serve`: after the orders, keep serving HTTP until Ctrl+C. */
const SERVE = process.argv.includes('--serve');
/** The HTTP port: PORT, else 3000 (0 picks a free one). */
const PORT = Number(process.env.PORT ?? 3000);

/** Starts the order service, lets a client place good and bad orders, prints what the failure handlers did. */
async function main(): Promise<void> {
  const redis = await findOrStartRedis();
  if (!redis) {
    console.error(HOW_TO_GET_REDIS);
    process.exitCode = 1;
    return;
  }
  console.log(`Redis ${redis.host}:${redis.port}${redis.startedHere ? ' (started for this run)' : ''}, key prefix ${RUN_ID}`);
  try {
    if (!(await runOrderService(redis))) process.exitCode = 1;
  } finally {
    await redis.stop();
  }
}

async function runOrderService(redis: SampleRedis): Promise<boolean> {
  const connection = { host: redis.host, port: redis.port };
  // Before the app is created: FlowFailureModule makes its metrics and tracer as it starts.
  const telemetry = startTelemetry();
  // An HTTP app for /metrics, /health and bull-board, with the Redis transport the orders come by beside it.
  const service = await NestFactory.create(OrderServiceModule.forRoot({ redis: connection, prefix: RUN_ID, metrics: telemetry.prometheus }), {
    logger: ['error', 'warn'],
  });
  service.connectMicroservice<MicroserviceOptions>({ transport: Transport.REDIS, options: connection });
  await service.startAllMicroservices();
  await service.listen(PORT, '127.0.0.1');
  const url = await service.getUrl();
  console.log(`HTTP ${url}: /metrics (Prometheus), /health (Terminus), /queues (bull-board)`);
  let client: OrderClient | undefined;
  try {
    client = await OrderClient.connect(connection);
    const settled = await placeSampleOrders(client);
    console.log(traceLine(telemetry.spans));
    if (SERVE) await stopSignal(`serving ${url} until Ctrl+C`);
    return settled;
  } finally {
    await client?.close();
    await service.close(); // stops HTTP, the transport, the Workers and FlowFailureModule, and closes their Redis connections
    await telemetry.shutdown();
    console.log(`stopped; deleted the ${await deleteKeysWithPrefix(redis.url, RUN_ID)} keys of ${RUN_ID}`);
  }
}

/** Resolves on SIGINT or SIGTERM, which from then on no longer end the process: the cleanup runs. */
function stopSignal(message: string): Promise<void> {
  console.log(message);
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => resolve());
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
