import type { OrderClient } from './order-client.js';
import { placedLine, statusLines, summaryLine } from './report.js';
import { SAMPLE_ORDERS } from './sample-orders.js';

const SETTLE_TIMEOUT_MS = 60_000;

/** Places the sample orders, waits for them to settle, prints what happened; false when some never settled. */
export async function placeSampleOrders(client: OrderClient): Promise<boolean> {
  const started = Date.now();
  const orderIds: number[] = [];
  for (const { request, expected } of SAMPLE_ORDERS) {
    const { orderId } = await client.place(request);
    console.log(placedLine(orderId, request, expected));
    orderIds.push(orderId);
  }
  console.log('waiting until every order is finished and its failures are handled...');
  const statuses = await client.waitUntilSettled(orderIds, SETTLE_TIMEOUT_MS);
  for (const status of statuses) for (const line of statusLines(status)) console.log(line);
  console.log(summaryLine(statuses, Date.now() - started));
  return statuses.every((status) => status.settled);
}
