import { type ClientProxy, ClientProxyFactory, Transport } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { ORDER_STATUS, type OrderRequest, type OrderStatus, PLACE_ORDER, type PlacedOrder } from '../order-messages.js';

/** Talks to the order service over Nest's Redis transport, like any other service would. */
export class OrderClient {
  private constructor(private readonly proxy: ClientProxy) {}

  static async connect(redis: { host: string; port: number }): Promise<OrderClient> {
    const proxy = ClientProxyFactory.create({ transport: Transport.REDIS, options: redis });
    await proxy.connect();
    return new OrderClient(proxy);
  }

  place(request: OrderRequest): Promise<PlacedOrder> {
    return firstValueFrom(this.proxy.send<PlacedOrder, OrderRequest>(PLACE_ORDER, request));
  }

  status(orderId: number): Promise<OrderStatus> {
    return firstValueFrom(this.proxy.send<OrderStatus, number>(ORDER_STATUS, orderId));
  }

  /** Asks until every order is settled (finished, failures handled); returns the last answers either way. */
  async waitUntilSettled(orderIds: number[], timeoutMs: number): Promise<OrderStatus[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const statuses = await Promise.all(orderIds.map((orderId) => this.status(orderId)));
      if (statuses.every((status) => status.settled) || Date.now() > deadline) return statuses;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  close(): Promise<void> {
    return this.proxy.close() as Promise<void>;
  }
}
