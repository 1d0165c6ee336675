import { Injectable } from '@nestjs/common';
import type { DeadLetter } from '../dispatcher/dead-letter.js';
import type { RunResult } from '../dispatcher/failure.dispatcher.js';
import { parseClaimMember } from '../redis/module-keys.js';
import { FlowFailureRuntime } from '../runtime/flow-failure.runtime.js';

export interface ReplayResult extends RunResult {
  id: string;
}

/** Dead letters: handlers that kept throwing, kept in Redis (they survive restarts) until replayed or discarded. */
@Injectable()
export class FlowFailureService {
  constructor(private readonly runtime: FlowFailureRuntime) {}

  /**
   * Resolves when this app instance has nothing left to do: every watched stream read and
   * acknowledged, no failure being classified, no handler queued, running or waiting to
   * retry. Meant for tests and graceful hand-overs; rejects after `timeoutMs`.
   */
  async whenIdle(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.runtime.isIdle())) {
      if (Date.now() > deadline) throw new Error(`FlowFailureModule still busy after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Every dead letter of this consumer group, oldest first. */
  getDeadLetters(): Promise<DeadLetter[]> {
    return this.runtime.parts.deadLetters.list();
  }

  /**
   * Runs the dead letter's handler once more, here and now. A success clears the dead
   * letter; a failure updates its error, attempts and time.
   */
  async replay(id: string): Promise<ReplayResult> {
    const { deadLetters, dispatcher } = this.runtime.parts;
    const claim = parseClaimMember(id);
    if (!claim || !(await deadLetters.get(id))) return { id, ok: false, error: `no dead letter ${id}` };
    const occurrence = await this.runtime.restore(claim.occurrenceId);
    if (!occurrence) return { id, ok: false, error: `the occurrence of dead letter ${id} is no longer stored` };
    return { id, ...(await dispatcher.replay(occurrence, claim.handlerKey)) };
  }

  /** Replays every dead letter, one after another. */
  async replayAll(): Promise<ReplayResult[]> {
    const results: ReplayResult[] = [];
    for (const letter of await this.getDeadLetters()) results.push(await this.replay(letter.id));
    return results;
  }

  /** Forgets a dead letter without running its handler again. */
  async discard(id: string): Promise<boolean> {
    const claim = parseClaimMember(id);
    return claim ? this.runtime.parts.claims.discard(claim) : false;
  }

  /** Forgets every dead letter; returns how many. */
  async discardAll(): Promise<number> {
    let count = 0;
    for (const letter of await this.getDeadLetters()) if (await this.discard(letter.id)) count++;
    return count;
  }
}
