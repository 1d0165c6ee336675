import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';

/** A test card number that payment providers always decline. */
export const DECLINED_CARD = '4000 0000 0000 0002';
/** A test card whose bank asks the customer to confirm the payment in its app (3-D Secure): it goes through, slowly. */
export const THREE_D_SECURE_CARD = '4000 0027 6000 3184';
const CUSTOMER_CONFIRMS_MS = 2500;

/** Stands in for a payment provider: a ledger of charges and refunds, in memory. */
@Injectable()
export class PaymentsService {
  private readonly charges = new Map<number, number>();
  /** By idempotency key, as a provider's refund API takes one: the same request twice refunds once. */
  private readonly refunds = new Map<string, { orderId: number; amount: number }>();

  async charge(orderId: number, card: string, amount: number): Promise<void> {
    if (card === DECLINED_CARD) throw new Error('card declined');
    if (card === THREE_D_SECURE_CARD) await sleep(CUSTOMER_CONFIRMS_MS);
    // Keyed by order, so a job BullMQ runs twice (e.g. after a stall) charges once.
    this.charges.set(orderId, amount);
  }

  refund(orderId: number, amount: number, idempotencyKey: string): void {
    if (!this.refunds.has(idempotencyKey)) this.refunds.set(idempotencyKey, { orderId, amount });
  }

  /** What the order was charged, less what was refunded. */
  balance(orderId: number): number {
    const refunded = [...this.refunds.values()].filter((refund) => refund.orderId === orderId);
    return refunded.reduce((balance, refund) => balance - refund.amount, this.charges.get(orderId) ?? 0);
  }
}
