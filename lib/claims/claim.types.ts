import type { JobAttempt } from '../redis/redis-keys.js';

/** A claim: the right of one handler to run for one occurrence. */
export interface HeldClaim {
  handlerKey: string;
  occurrenceId: string;
}

export interface GrantedClaim extends HeldClaim {
  /** 1 for the first run; counts runs started, including ones whose process died. */
  attempt: number;
}

/**
 * Claims the stream's read took before the occurrence was classified: the occurrence it
 * recorded, and the claims this process got.
 */
export interface ReadClaims {
  occurrenceId: string;
  granted: GrantedClaim[];
  /** The read recorded the occurrence first (among all replicas). */
  firstRecorded: boolean;
}

/** What a claim call did: the claims granted, and the occurrences it recorded first (among all replicas). */
export interface ClaimResult {
  granted: GrantedClaim[];
  firstRecorded: string[];
}

/** One occurrence to record, with the handlers that want it. */
export interface ClaimRequest {
  occurrenceId: string;
  /** The occurrence as JSON: what another replica needs to run it. */
  snapshot: string;
  handlerKeys: readonly string[];
  /** The attempt that failed, when known: a live reservation of it by another owner decides whose the claims are. */
  failedAttempt?: JobAttempt;
}

/** Claims taken before their occurrence was classified, of handlers that do not want it. */
export interface UnwantedClaims {
  occurrenceId: string;
  snapshot: string;
  handlerKeys: readonly string[];
}

export type SettleOutcome = { outcome: 'done' } | { outcome: 'dead' };

/**
 * The claims in a claim script's reply (claimOccurrence's flat list: position, handler,
 * attempt, ...); `occurrenceAt` names the occurrence of a 1-based position.
 */
export function grantedClaims(flat: readonly unknown[], occurrenceAt: (position: number) => string): GrantedClaim[] {
  const granted: GrantedClaim[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) {
    granted.push({ occurrenceId: occurrenceAt(Number(flat[i])), handlerKey: String(flat[i + 1]), attempt: Number(flat[i + 2]) });
  }
  return granted;
}
