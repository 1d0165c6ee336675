import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { FlowFailureEvent } from 'nestjs-flow-failure';
import { subjectOf } from '../discovery/handler-filter.js';
import { HandlerExplorer } from '../discovery/handler.explorer.js';
import { HandlerRegistry } from '../discovery/handler.registry.js';
import { describeError } from '../util/describe-error.js';

/** What one handler did with a delivered event. */
export interface HandlerOutcome {
  /** `Class.method`. */
  handler: string;
  ok: boolean;
  /** What it threw (`ok` false). */
  error?: unknown;
  /** Its message, as a dead letter would keep it. */
  message?: string;
}

/**
 * Delivers events to the handlers of a Nest testing module, in-process and with no Redis:
 * the same discovery and decorator filters as the module, one attempt per matching handler.
 */
@Injectable()
export class FlowFailureTester implements OnModuleInit {
  constructor(
    @Inject(HandlerExplorer) private readonly explorer: HandlerExplorer,
    @Inject(HandlerRegistry) private readonly registry: HandlerRegistry,
  ) {}

  onModuleInit(): void {
    this.explorer.explore([]);
  }

  /** `Class.method` of every handler that this event matches. */
  handlersFor(event: FlowFailureEvent): string[] {
    return this.registry.match(subjectOf(event)).map((binding) => binding.name);
  }

  /**
   * Runs each matching handler once, as its first attempt (or `attempt`), and tells how each
   * ended. A handler that throws does not stop the others.
   */
  async deliver(event: FlowFailureEvent, { attempt = 1, signal }: { attempt?: number; signal?: AbortSignal } = {}): Promise<HandlerOutcome[]> {
    const context = { attempt, signal: signal ?? new AbortController().signal };
    const outcomes: HandlerOutcome[] = [];
    for (const binding of this.registry.match(subjectOf(event))) {
      try {
        await binding.invoke(event, context);
        outcomes.push({ handler: binding.name, ok: true });
      } catch (error) {
        outcomes.push({ handler: binding.name, ok: false, error, message: describeError(error) });
      }
    }
    return outcomes;
  }
}
