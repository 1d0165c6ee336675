import { Inject, Injectable } from '@nestjs/common';
import type { UnclassifiedFailure } from '../classifier/bad-jobs.js';
import type { DeadLetter } from '../dead-letters/dead-letter.js';
import type { RunResult } from '../dispatcher/run.js';
import { MESSAGES } from '../flow-failure.messages.js';
import { FlowFailureRuntime } from '../runtime/flow-failure.runtime.js';

export interface ReplayResult extends RunResult {
  id: string;
}

/** Dead letters: handlers that kept throwing, kept in Redis (they survive restarts) until replayed or discarded. */
@Injectable()
export class FlowFailureService {
  constructor(@Inject(FlowFailureRuntime) private readonly runtime: FlowFailureRuntime) {}

  /**
   * Resolves when this app instance has nothing left to do: every watched stream read and
   * acknowledged, no failure being classified, no handler queued, running or waiting to
   * retry. Meant for tests and graceful hand-overs; rejects after `timeoutMs`.
   */
  async whenIdle(timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await this.runtime.isIdle())) {
      if (performance.now() > deadline) throw new Error(MESSAGES.stillBusy(timeoutMs));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Every dead letter of this consumer group, oldest first. */
  getDeadLetters(): Promise<DeadLetter[]> {
    return this.runtime.deadLetters.list();
  }

  /**
   * Runs the dead letter's handler once more, here and now. A success clears the dead
   * letter; a failure updates its error, attempts and time.
   */
  async replay(id: string): Promise<ReplayResult> {
    return { id, ...(await this.runtime.deadLetters.replay(id)) };
  }

  /** Replays every dead letter, one after another. */
  async replayAll(): Promise<ReplayResult[]> {
    const results: ReplayResult[] = [];
    for (const letter of await this.getDeadLetters()) results.push(await this.replay(letter.id));
    return results;
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
    for (const letter of await this.getDeadLetters()) if (await this.discard(letter.id)) count++;
    return count;
  }
}
