import type { ClaimStore } from '../claims/claim.store.js';
import { parseClaimMember } from '../claims/formats.js';
import type { FailureDispatcher } from '../dispatcher/failure.dispatcher.js';
import type { OccurrenceRestorer } from '../dispatcher/occurrence-restorer.js';
import type { RunResult } from '../dispatcher/run.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { DeadLetter } from './dead-letter.js';
import type { DeadLetterStore } from './dead-letter.store.js';

/** Dead letters listed, replayed through the claim rules, and discarded. */
export class DeadLetters {
  constructor(
    private readonly store: DeadLetterStore,
    private readonly claims: ClaimStore,
    private readonly restorer: OccurrenceRestorer,
    private readonly dispatcher: FailureDispatcher,
  ) {}

  list(): Promise<DeadLetter[]> {
    return this.store.list();
  }

  /** Runs the dead letter's handler once more, here and now: a replay claims it like any run. */
  async replay(id: string): Promise<RunResult> {
    const claim = parseClaimMember(id);
    if (!claim || !(await this.store.get(id))) return { ok: false, error: MESSAGES.noDeadLetter(id) };
    const occurrence = await this.restorer.restore(claim.occurrenceId);
    if (!occurrence) return { ok: false, error: MESSAGES.occurrenceGone(id) };
    return this.dispatcher.replay(occurrence, claim.handlerKey);
  }

  async discard(id: string): Promise<boolean> {
    const claim = parseClaimMember(id);
    return claim ? this.claims.discard(claim) : false;
  }
}
