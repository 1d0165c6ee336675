import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { PaymentsService } from './payments.service.js';

export interface ChargePaymentData {
  orderId: number;
  card: string;
  amount: number;
}

@Processor('payments')
export class PaymentsProcessor extends WorkerHost {
  constructor(private readonly payments: PaymentsService) {
    super();
  }

  /** What it returns is the flow's record of the charge: OrderCompensation refunds it from there. */
  async process(job: Job<ChargePaymentData>): Promise<{ charged: number }> {
    await this.payments.charge(job.data.orderId, job.data.card, job.data.amount);
    return { charged: job.data.amount };
  }
}
