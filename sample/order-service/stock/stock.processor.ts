import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { type Reservation, StockService } from './stock.service.js';

export interface ReserveStockData {
  orderId: number;
  item: string;
  quantity: number;
}

@Processor('stock')
export class StockProcessor extends WorkerHost {
  constructor(private readonly stock: StockService) {
    super();
  }

  async process(job: Job<ReserveStockData>): Promise<{ reserved: Reservation }> {
    return { reserved: this.stock.reserve(job.data.orderId, job.data.item, job.data.quantity) };
  }
}
