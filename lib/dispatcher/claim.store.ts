import type { Redis } from 'ioredis';
import { type JobAttempt, jobKey } from '../redis/job-key.js';
import { ModuleKeys, parseClaimMember } from '../redis/module-keys.js';
import { CLAIM, DISCARD, DROP, EXPIRED, FORGET, LEASE, RECORDED, RESERVE, SETTLE } from './claim-scripts.js';

/** A claim this process holds: one handler for one occurrence. */
export interface HeldClaim {
  handlerKey: string;
  occurrenceId: string;
}

export interface GrantedClaim extends HeldClaim {
  /** 1 for the first run; counts runs started, including ones whose process died. */
  attempt: number;
}

/**
 * Claims a script took before the occurrence was classified (the stream's read script):
 * the occurrence it recorded, and the claims this process got.
 */
export interface ReadClaims {
  occurrenceId: string;
  granted: GrantedClaim[];
}

/**
 * The claims in a claim script's reply (CLAIM_OCCURRENCE's flat list: position, handler,
 * attempt, ...); `occurrenceAt` names the occurrence of a 1-based position.
 */
export function grantedClaims(flat: readonly unknown[], occurrenceAt: (position: number) => string): GrantedClaim[] {
  const granted: GrantedClaim[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) {
    granted.push({ occurrenceId: occurrenceAt(Number(flat[i])), handlerKey: String(flat[i + 1]), attempt: Number(flat[i + 2]) });
  }
  return granted;
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
export interface ForgetRequest {
  occurrenceId: string;
  snapshot: string;
  handlerKeys: readonly string[];
}

export type SettleOutcome =
  | { outcome: 'done' }
  | { outcome: 'retry'; nextAttempt: number }
  | { outcome: 'dead'; record: string };

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

interface PendingSettlement {
  claim: HeldClaim;
  settlement: SettleOutcome;
  resolve: (stillHeld: boolean) => void;
  reject: (error: unknown) => void;
}

/** Outcomes per settle script: a catch-up's outcomes in a few calls, none holding Redis for long. */
const SETTLES_PER_CALL = 100;

/** The one Redis claim-and-mark mechanism; see claim-scripts.ts for the rules. */
export class ClaimStore {
  private readonly scripts: Record<
    'ffClaim' | 'ffReserve' | 'ffSettle' | 'ffForget' | 'ffDiscard' | 'ffDrop' | 'ffLease' | 'ffExpired' | 'ffRecorded',
    ScriptFn
  >;
  private settling: PendingSettlement[] = [];

  constructor(
    private readonly redis: Redis,
    readonly keys: ModuleKeys,
    /** Unique to this process: claims name their holder. */
    readonly owner: string,
    private readonly leaseMs: number,
    private readonly dedupTtlMs: number,
  ) {
    redis.defineCommand('ffClaim', { lua: CLAIM });
    redis.defineCommand('ffReserve', { numberOfKeys: 2, lua: RESERVE });
    // Sent at once, not held for the auto-pipeline's next flush (a setImmediate, after
    // whatever I/O the Workers have queued): a reservation must be in before its job fails,
    // and a claim is the round trip between a failure and its handler.
    redis.options.autoPipeliningIgnoredCommands = [...(redis.options.autoPipeliningIgnoredCommands ?? []), 'ffClaim', 'ffReserve'];
    redis.defineCommand('ffSettle', { lua: SETTLE });
    redis.defineCommand('ffForget', { lua: FORGET });
    redis.defineCommand('ffDiscard', { numberOfKeys: 2, lua: DISCARD });
    redis.defineCommand('ffDrop', { numberOfKeys: 2, lua: DROP });
    redis.defineCommand('ffLease', { lua: LEASE });
    redis.defineCommand('ffExpired', { numberOfKeys: 1, lua: EXPIRED });
    redis.defineCommand('ffRecorded', { lua: RECORDED });
    const commands = redis as unknown as Record<string, ScriptFn>;
    const bind = (name: string): ScriptFn => (...args) => commands[name].apply(redis, args);
    this.scripts = {
      ffClaim: bind('ffClaim'),
      ffReserve: bind('ffReserve'),
      ffSettle: bind('ffSettle'),
      ffForget: bind('ffForget'),
      ffDiscard: bind('ffDiscard'),
      ffDrop: bind('ffDrop'),
      ffLease: bind('ffLease'),
      ffExpired: bind('ffExpired'),
      ffRecorded: bind('ffRecorded'),
    };
  }

  /**
   * Records each occurrence (idempotent) and takes the claims that are free, all in one
   * round trip. An occurrence with no handlers is still recorded, for `markerTtlMs`, so the
   * sweep knows it was seen.
   */
  async claim(requests: readonly ClaimRequest[], options: { revive?: boolean; markerTtlMs: number }): Promise<GrantedClaim[]> {
    return this.claimAs(options.revive ? 'revive' : 'claim', requests, options.markerTtlMs);
  }

  /**
   * Claims for the handlers this owner started on its reservation (see `reserve`), and ends
   * the reservation. @returns the claims that are this owner's; any other was taken by
   * someone else after the reservation had lapsed.
   */
  async convert(requests: readonly ClaimRequest[], markerTtlMs: number): Promise<GrantedClaim[]> {
    return this.claimAs('convert', requests, markerTtlMs);
  }

  /**
   * Reserves the failure of an attempt a Worker of this owner has just started, for leaseMs.
   * @returns false when the attempt has already ended, or is not the job's current one.
   */
  async reserve(attempt: JobAttempt): Promise<boolean> {
    const { queueName, jobId, attemptsStarted } = attempt;
    const job = jobKey(this.keys.prefix, queueName, jobId);
    const reply = await this.scripts.ffReserve(job, this.reservationKey(attempt), this.owner, attemptsStarted, this.leaseMs);
    return reply === 1;
  }

  /** Ends reservations this owner took and will not use. */
  async unreserve(attempts: readonly JobAttempt[]): Promise<void> {
    if (attempts.length > 0) await this.redis.del(...attempts.map((attempt) => this.reservationKey(attempt)));
  }

  private async claimAs(mode: 'claim' | 'revive' | 'convert', requests: readonly ClaimRequest[], markerTtlMs: number): Promise<GrantedClaim[]> {
    if (requests.length === 0) return [];
    const keys = [this.keys.leases, ...requests.map((r) => this.keys.occurrence(r.occurrenceId))];
    const args: (string | number)[] = [this.owner, this.leaseMs, mode];
    for (const { occurrenceId, snapshot, handlerKeys, failedAttempt } of requests) {
      const ttl = handlerKeys.length > 0 ? this.dedupTtlMs : markerTtlMs;
      const reservation = failedAttempt ? this.reservationKey(failedAttempt) : '';
      args.push(occurrenceId, ttl, snapshot, reservation, handlerKeys.length, ...handlerKeys);
    }
    const reply = (await this.scripts.ffClaim(keys.length, ...keys, ...args)) as unknown[];
    return grantedClaims(reply, (position) => requests[position - 1].occurrenceId);
  }

  private reservationKey({ queueName, jobId, attemptsStarted }: JobAttempt): string {
    return this.keys.reservation(queueName, jobId, attemptsStarted);
  }

  /**
   * What another script that claims with these rules (CLAIM_OCCURRENCE) is given: leases
   * key, occurrence key prefix, owner, leaseMs, the occurrence's ttl and the reservation key prefix.
   */
  claimArgs(): (string | number)[] {
    return [this.keys.leases, this.keys.occurrence(''), this.owner, this.leaseMs, this.dedupTtlMs, this.keys.reservationPrefix];
  }

  /**
   * Gives up claims taken before the occurrence was classified, of handlers that do not want
   * it (held by this owner, or expired), and stores each occurrence's snapshot where a
   * handler still needs it; an occurrence no handler wants stays as a marker for markerTtlMs.
   */
  async forget(requests: readonly ForgetRequest[], markerTtlMs: number): Promise<void> {
    if (requests.length === 0) return;
    const keys = [this.keys.leases, ...requests.map((r) => this.keys.occurrence(r.occurrenceId))];
    const args: (string | number)[] = [this.owner, markerTtlMs];
    for (const { occurrenceId, snapshot, handlerKeys } of requests) args.push(occurrenceId, snapshot, handlerKeys.length, ...handlerKeys);
    await this.scripts.ffForget(keys.length, ...keys, ...args);
  }

  /**
   * Records a handler's outcome. Outcomes reported in the same turn of the event loop go
   * in one script: a round trip and a script call each would cost the app more CPU than
   * the handlers of a catch-up. @returns false when the claim was no longer ours.
   */
  settle(claim: HeldClaim, settlement: SettleOutcome): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      if (this.settling.push({ claim, settlement, resolve, reject }) === 1) setImmediate(() => this.settlePending());
    });
  }

  private settlePending(): void {
    const pending = this.settling;
    this.settling = [];
    for (let from = 0; from < pending.length; from += SETTLES_PER_CALL) {
      const chunk = pending.slice(from, from + SETTLES_PER_CALL);
      const keys = [this.keys.leases, this.keys.deadLetters, ...chunk.map(({ claim }) => this.keys.occurrence(claim.occurrenceId))];
      const args: (string | number)[] = [this.owner, this.dedupTtlMs];
      for (const { claim, settlement } of chunk) {
        const value =
          settlement.outcome === 'retry' ? settlement.nextAttempt : settlement.outcome === 'dead' ? settlement.record : '';
        args.push(claim.handlerKey, claim.occurrenceId, settlement.outcome, value);
      }
      const failed = (error: unknown) => chunk.forEach(({ reject }) => reject(error));
      try {
        this.scripts.ffSettle(keys.length, ...keys, ...args).then(
          (reply) => chunk.forEach(({ resolve }, i) => resolve((reply as number[])[i] === 1)),
          failed,
        );
      } catch (error) {
        failed(error); // thrown, not rejected: still each caller's error, never an uncaught one
      }
    }
  }

  /** Forgets a dead letter; its handler never runs again for that occurrence. @returns false when there was none. */
  async discard(claim: HeldClaim): Promise<boolean> {
    const reply = await this.scripts.ffDiscard(
      this.keys.occurrence(claim.occurrenceId),
      this.keys.deadLetters,
      claim.handlerKey,
      claim.occurrenceId,
      this.dedupTtlMs,
    );
    return reply === 1;
  }

  /** Extends ('renew') or gives back ('release') claims in one round trip; returns those no longer ours. */
  async lease(claims: readonly HeldClaim[], mode: 'renew' | 'release'): Promise<HeldClaim[]> {
    if (claims.length === 0) return [];
    const keys = [this.keys.leases, ...claims.map((c) => this.keys.occurrence(c.occurrenceId))];
    const args = claims.flatMap((c) => [c.handlerKey, c.occurrenceId]);
    const lost = (await this.scripts.ffLease(keys.length, ...keys, this.owner, this.leaseMs, mode, ...args)) as number[];
    return lost.map((position) => claims[position - 1]);
  }

  /** Claims whose holder stopped renewing them. */
  async expired(limit: number): Promise<HeldClaim[]> {
    const members = (await this.scripts.ffExpired(this.keys.leases, limit)) as string[];
    return members.map(parseClaimMember).filter((m): m is HeldClaim => m !== undefined);
  }

  /** For each occurrence, whether it is recorded (claimed, settled, or marked as seen by no handler). */
  async recorded(occurrenceIds: readonly string[]): Promise<boolean[]> {
    if (occurrenceIds.length === 0) return [];
    const keys = occurrenceIds.map((id) => this.keys.occurrence(id));
    const reply = (await this.scripts.ffRecorded(keys.length, ...keys)) as number[];
    return reply.map((exists) => exists === 1);
  }

  /** The stored snapshot of an occurrence, if it is still remembered. */
  async snapshot(occurrenceId: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.occurrence(occurrenceId), 'e')) ?? undefined;
  }

  /** Forgets a lease whose occurrence has expired; nothing could run it any more. */
  async dropLease(claim: HeldClaim): Promise<void> {
    await this.scripts.ffDrop(this.keys.leases, this.keys.occurrence(claim.occurrenceId), claim.handlerKey, claim.occurrenceId);
  }
}
