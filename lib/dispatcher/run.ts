import type { GrantedClaim } from '../claims/claim.types.js';
import type { HandlerBinding } from '../discovery/handler.registry.js';
import type { FlowFailureEvent } from '../interfaces/failure-events.interface.js';

/** A handler that wants an occurrence, with the event it gets. */
export interface HandlerMatch {
  binding: HandlerBinding;
  event: FlowFailureEvent;
  /** For a `settled` handler: how long its run may wait for the parent's pending children (ms). */
  settledTimeoutMs?: number;
}

/** One handler's run for one occurrence, under the claim it holds. */
export interface Run extends GrantedClaim, HandlerMatch {
  /** The last attempt this run may make: handlerAttempts, or the attempt itself for a replay. */
  maxAttempt: number;
  /** Told the result once the run is settled (replays wait for it). */
  done?: (result: RunResult) => void;
}

export interface RunResult {
  ok: boolean;
  error?: string;
  /** Nothing was run: the handler completed that occurrence already, or runs it elsewhere now. */
  skipped?: boolean;
}
