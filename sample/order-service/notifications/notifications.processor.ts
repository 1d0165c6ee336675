import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';

export interface SendConfirmationData {
  orderId: number;
  email: string;
}

const PLAUSIBLE_ADDRESS = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

/** "Sends" the confirmation e-mail; a mail provider would refuse a malformed address, so this does too. */
@Processor('notifications')
export class NotificationsProcessor extends WorkerHost {
  async process(job: Job<SendConfirmationData>): Promise<{ confirmationSentTo: string }> {
    if (!PLAUSIBLE_ADDRESS.test(job.data.email)) throw new Error(`bad e-mail address: ${job.data.email}`);
    return { confirmationSentTo: job.data.email };
  }
}
