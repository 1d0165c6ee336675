import { Injectable } from '@nestjs/common';
import type { Incident } from '../../order-messages.js';

/** Failed steps, for whoever is on call (in memory here; a table or a pager in real life). */
@Injectable()
export class IncidentLog {
  private readonly incidents: Incident[] = [];

  add(incident: Incident): void {
    this.incidents.push(incident);
  }

  forOrder(orderId: number): Incident[] {
    return this.incidents.filter((incident) => incident.orderId === orderId);
  }
}
