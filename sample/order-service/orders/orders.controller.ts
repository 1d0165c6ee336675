import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { ORDER_STATUS, type OrderRequest, type OrderStatus, PLACE_ORDER, type PlacedOrder } from '../../order-messages.js';
import { OrderPlacement } from './order-placement.service.js';
import { OrderStatusService } from './order-status.service.js';

@Controller()
export class OrdersController {
  constructor(
    private readonly placement: OrderPlacement,
    private readonly statuses: OrderStatusService,
  ) {}

  @MessagePattern(PLACE_ORDER)
  placeOrder(@Payload() request: OrderRequest): Promise<PlacedOrder> {
    return this.placement.place(request);
  }

  @MessagePattern(ORDER_STATUS)
  orderStatus(@Payload() orderId: number): Promise<OrderStatus> {
    return this.statuses.status(orderId);
  }
}
