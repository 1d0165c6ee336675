import { Injectable } from '@nestjs/common';
import { CATALOGUE } from '../catalogue.js';

export interface Reservation {
  item: string;
  quantity: number;
}

/** The warehouse: what is on hand and what each order has put aside, in memory. */
@Injectable()
export class StockService {
  private readonly onHand = new Map(Object.entries(CATALOGUE).map(([item, { inStock }]) => [item, inStock]));
  private readonly reservations = new Map<number, Reservation>();

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

  /** Puts the order's reservation back on the shelf; returns it (undefined when there was none). */
  release(orderId: number): Reservation | undefined {
    const reservation = this.reservations.get(orderId);
    if (!reservation) return undefined;
    this.reservations.delete(orderId);
    this.onHand.set(reservation.item, (this.onHand.get(reservation.item) ?? 0) + reservation.quantity);
    return reservation;
  }
}
