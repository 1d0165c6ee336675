import { Inject, Injectable } from '@nestjs/common';
import type { UnclassifiedFailure } from '../classifier/bad-jobs.js';
import type { DeadLetter } from '../dead-letters/dead-letter.js';
import type { RunResult } from '../dispatcher/run.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { FlowFailureStatus } from '../interfaces/flow-failure-status.interface.js';
import { FlowFailureRuntime } from '../runtime/flow-failure.runtime.js';

/** Dead letters read per page by replayAll and discardAll. */
const PAGE = 100;

export interface ReplayResult extends RunResult {
  id: string;
}

/** Dead letters: handlers that kept throwing, kept in Redis (they survive restarts) until replayed or discarded. */
@Injectable()
export class FlowFailureService {
  constructor(@Inject(FlowFailureRuntime) private readonly runtime: FlowFailureRuntime) {}

  /**
   * Resolves when this app instance has nothing left to do: every watched stream read and
   * acknowledged, no failure being classified or swept, no handler queued, running or
   * waiting to retry. Meant for tests and graceful hand-overs; rejects after `timeoutMs`.
   */
  async whenIdle(timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await this.runtime.isIdle())) {
      if (performance.now() > deadline) throw new Error(MESSAGES.stillBusy(timeoutMs));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * This instance's health, as a health check reads it: Redis answering, each watched
   * stream's lag, dead letters, backlog. Each Redis call waits at most `timeoutMs`.
   */
  status(timeoutMs = 1000): Promise<FlowFailureStatus> {
    return this.runtime.status(timeoutMs);
  }

  /** Dead letters of this consumer group, oldest first: `limit` (default 100) of them from `offset` (default 0). */
  getDeadLetters(options: { offset?: number; limit?: number } = {}): Promise<DeadLetter[]> {
    return this.runtime.deadLetters.list(options.offset ?? 0, options.limit ?? 100);
  }

  /** How many dead letters this consumer group keeps. */
  countDeadLetters(): Promise<number> {
    return this.runtime.deadLetters.count();
  }

  /**
   * Runs the dead letter's handler once more (the dead-letter job is retried, and the
   * dead-letter Worker of whichever instance takes it runs the handler through the claim
   * rules). A success clears the dead letter; a failure updates its error and time.
   */
  async replay(id: string): Promise<ReplayResult> {
    return { id, ...(await this.runtime.deadLetters.replay(id)) };
  }

  /** Replays every dead letter, one after another, oldest first. */
  async replayAll(): Promise<ReplayResult[]> {
    const results: ReplayResult[] = [];
    // A replay that succeeds leaves the list; one that fails stays, and the next page starts after it.
    for (let stayed = 0; ; ) {
      const page = await this.getDeadLetters({ offset: stayed, limit: PAGE });
      for (const letter of page) {
        const result = await this.replay(letter.id);
        results.push(result);
        if (!result.ok) stayed++;
      }
      if (page.length < PAGE) return results;
    }
  }

  /** Forgets a dead letter without running its handler again. */
  discard(id: string): Promise<boolean> {
    return this.runtime.deadLetters.discard(id);
  }

  /**
   * Failures whose stored job could not be classified at all (logged once each): they were
   * not delivered. Newest first; the last 1000 are kept.
   */
  getUnclassifiedFailures(options: { offset?: number; limit?: number } = {}): Promise<UnclassifiedFailure[]> {
    return this.runtime.badJobs.list(options.offset ?? 0, options.limit ?? 100);
  }

  /** Forgets every dead letter; returns how many. */
  async discardAll(): Promise<number> {
    let count = 0;
    for (let kept = 0; ; ) {
      const page = await this.getDeadLetters({ offset: kept, limit: PAGE });
      for (const letter of page) {
        if (await this.discard(letter.id)) count++;
        else kept++;
      }
      if (page.length < PAGE) return count;
    }
  }
}
