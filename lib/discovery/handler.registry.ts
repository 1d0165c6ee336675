import { Injectable } from '@nestjs/common';
import type { FlowFailureEvent, FlowFailureEventKind } from '../interfaces/failure-events.interface.js';
import type { HandlerContext } from '../interfaces/handler-context.interface.js';
import { type FilterSubject, type HandlerFilter, filterMatches } from './handler-filter.js';

/** One handler method, with every decorator stacked on it for one event kind. */
export interface HandlerBinding {
  /** `${kind}:${Class}.${method}`: names the handler in claims and dead letters. */
  key: string;
  kind: FlowFailureEventKind;
  /** `Class.method`, for logs. */
  name: string;
  /** The method runs when any of these matches. */
  filters: HandlerFilter[];
  invoke(event: FlowFailureEvent, context: HandlerContext): Promise<unknown>;
}

/** The handlers found at start-up and the queues the module watches. */
@Injectable()
export class HandlerRegistry {
  private readonly bindings = new Map<string, HandlerBinding>();
  private readonly queues = new Set<string>();

  add(binding: HandlerBinding): void {
    this.bindings.set(binding.key, binding);
  }

  watch(queueName: string): void {
    this.queues.add(queueName);
  }

  get watchedQueues(): string[] {
    return [...this.queues].sort();
  }

  get all(): HandlerBinding[] {
    return [...this.bindings.values()];
  }

  /** Whether any handler could match once the job's name is known (`subject.jobName` undefined: not known yet). */
  couldMatch(subject: FilterSubject): boolean {
    return this.all.some(
      (b) =>
        b.kind === subject.kind &&
        b.filters.some((f) => filterMatches(subject.jobName === undefined ? { ...f, jobNames: undefined } : f, subject)),
    );
  }

  /** Every handler that may want a failure of this queue, as a child or as a parent (a superset of `match`). */
  handlersOf(queueName: string): string[] {
    return this.all.filter((b) => b.filters.some((f) => !f.queueNames || f.queueNames.has(queueName))).map((b) => b.key);
  }

  match(subject: FilterSubject): HandlerBinding[] {
    return this.all.filter((b) => b.kind === subject.kind && b.filters.some((f) => filterMatches(f, subject)));
  }
}
