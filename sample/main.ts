import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { type MicroserviceOptions, Transport } from '@nestjs/microservices';
import { OrderClient } from './client/order-client.js';
import { placeSampleOrders } from './client/place-sample-orders.js';
import { deleteKeysWithPrefix } from './delete-run-keys.js';
import { RUN_ID } from './order-messages.js';
import { OrderServiceModule } from './order-service/order-service.module.js';
import { HOW_TO_GET_REDIS, type SampleRedis, findOrStartRedis } from './sample-redis.js';

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
  const service = await NestFactory.createMicroservice<MicroserviceOptions>(
    OrderServiceModule.forRoot({ redis: connection, prefix: RUN_ID }),
    { transport: Transport.REDIS, options: connection, logger: ['error', 'warn'] },
  );
  await service.listen();
  let client: OrderClient | undefined;
  try {
    client = await OrderClient.connect(connection);
    return await placeSampleOrders(client);
  } finally {
    await client?.close();
    await service.close(); // stops the Workers and FlowFailureModule, and closes their Redis connections
    await deleteKeysWithPrefix(redis.url, RUN_ID);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
