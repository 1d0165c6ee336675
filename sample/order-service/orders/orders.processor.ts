import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import type { OrderResult } from '../../order-messages.js';
import { stepResults } from './step-results.js';

export interface PlaceOrderData {
  orderId: number;
}

/**
 * Runs once payment and stock are done and the confirmation is sent or has failed for good
 * (it has `ignoreDependencyOnFailure`). When payment or stock fails, BullMQ fails this job
 * without calling `process()` (they have `failParentOnFailure`) and OrderCompensation takes
 * over. The Worker of this queue is still needed then: it is what moves the order to failed.
 */
@Processor('orders')
export class OrdersProcessor extends WorkerHost {
  async process(job: Job<PlaceOrderData>): Promise<OrderResult> {
    const results = stepResults(Object.values(await job.getChildrenValues()));
    const ignoredFailures = Object.values(await job.getIgnoredChildrenFailures());
    return {
      charged: results.charged ?? 0,
      reserved: results.reserved ?? { item: 'nothing', quantity: 0 },
      confirmation: results.confirmationSentTo
        ? `confirmation sent to ${results.confirmationSentTo}`
        : `no confirmation (${ignoredFailures.join('; ') || 'not sent'})`,
    };
  }
}
