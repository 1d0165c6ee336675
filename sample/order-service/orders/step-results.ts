import type { Reservation } from '../stock/stock.service.js';

/** What the steps of an order return, a field each: payment `charged`, stock `reserved`, confirmation `confirmationSentTo`. */
export type StepResults = Partial<{ charged: number; reserved: Reservation; confirmationSentTo: string }>;

/** The return values of an order's completed steps, as one object. */
export function stepResults(returnValues: readonly unknown[]): StepResults {
  return Object.assign({}, ...returnValues) as StepResults;
}
