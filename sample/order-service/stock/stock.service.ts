import { Injectable } from '@nestjs/common';
import { CATALOGUE } from '../catalogue.js';

export interface Reservation {
  item: string;
  quantity: number;
}

/** The warehouse: what is on hand, what each order has put aside and what came back, in memory. */
@Injectable()
export class StockService {
  private readonly onHand = new Map(Object.entries(CATALOGUE).map(([item, { inStock }]) => [item, inStock]));
  private readonly reservations = new Map<number, Reservation>();
  /** By idempotency key: the same release twice puts the stock back once. */
  private readonly releases = new Map<string, { orderId: number; reservation: Reservation }>();

  reserve(orderId: number, item: string, quantity: number): Reservation {
    const existing = this.reservations.get(orderId);
    if (existing) return existing; // a job BullMQ runs twice reserves once
    const available = this.onHand.get(item) ?? 0;
    if (available < quantity) throw new Error(`out of stock: ${item}`);
    this.onHand.set(item, available - quantity);
    const reservation = { item, quantity };
    this.reservations.set(orderId, reservation);
    return reservation;
  }

  /** Puts a reservation of the order back on the shelf. */
  release(orderId: number, reservation: Reservation, idempotencyKey: string): void {
    if (this.releases.has(idempotencyKey)) return;
    this.releases.set(idempotencyKey, { orderId, reservation });
    this.onHand.set(reservation.item, (this.onHand.get(reservation.item) ?? 0) + reservation.quantity);
  }

  /** How many items the order has put aside and not given back. */
  held(orderId: number): number {
    const released = [...this.releases.values()].filter((release) => release.orderId === orderId);
    return released.reduce((held, { reservation }) => held - reservation.quantity, this.reservations.get(orderId)?.quantity ?? 0);
  }
}
