import { Injectable } from '@nestjs/common';

/** A test card number that payment providers always decline. */
export const DECLINED_CARD = '4000 0000 0000 0002';

/** Stands in for a payment provider: a ledger of charges, in memory. */
@Injectable()
export class PaymentsService {
  private readonly charges = new Map<number, number>();

  charge(orderId: number, card: string, amount: number): void {
    if (card === DECLINED_CARD) throw new Error('card declined');
    // Keyed by order, so a job BullMQ runs twice (e.g. after a stall) charges once.
    this.charges.set(orderId, amount);
  }

  /** Gives back what the order was charged; returns the amount (0 when nothing was charged). */
  refund(orderId: number): number {
    const amount = this.charges.get(orderId) ?? 0;
    this.charges.delete(orderId);
    return amount;
  }
}
