import type { Cluster, Redis } from 'ioredis';
import { traced, tracing } from '../diagnostics.js';
import type { JobAttempt, RedisKeys } from '../redis/redis-keys.js';
import type { ClaimRequest, GrantedClaim, HeldClaim, SettleOutcome, UnwantedClaims } from './claim.types.js';
import { grantedClaims } from './claim.types.js';
import { parseClaimMember } from './formats.js';
import type { LuaScripts, ScriptArg } from './lua-scripts.js';

interface PendingSettlement {
  claim: HeldClaim;
  settlement: SettleOutcome;
  resolve: (stillHeld: boolean) => void;
  reject: (error: unknown) => void;
}

/** Outcomes per settle script: a catch-up's outcomes in a few calls, none holding Redis for long. */
const SETTLES_PER_CALL = 100;

/** What a claim is taken as: a first claim, a dead letter's replay, or the reserving owner recording its runs. */
type ClaimMode = 'claim' | 'revive' | 'reserved';

/**
 * The one claim-and-mark mechanism: every path that runs a handler takes its claim here
 * and settles it here. The rules are in lua/ (claim-occurrence.lua above all).
 */
export class ClaimStore {
  private settling: PendingSettlement[] = [];

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly scripts: LuaScripts,
    readonly keys: RedisKeys,
    /** Unique to this process: claims name their holder. */
    readonly owner: string,
    private readonly leaseMs: number,
    private readonly dedupTtlMs: number,
  ) {}

  /**
   * Records each occurrence (idempotent) and takes the claims that are free, all in one
   * round trip. An occurrence with no handlers is still recorded, for `markerTtlMs`, so the
   * sweep knows it was seen.
   */
  claim(requests: readonly ClaimRequest[], options: { revive?: boolean; markerTtlMs: number }): Promise<GrantedClaim[]> {
    return this.claimAs(options.revive ? 'revive' : 'claim', requests, options.markerTtlMs);
  }

  /**
   * Claims for the handlers this owner started on its reservation (see `reserve`), and ends
   * the reservation. @returns the claims that are this owner's; any other was taken by
   * someone else after the reservation had lapsed.
   */
  claimReserved(requests: readonly ClaimRequest[], markerTtlMs: number): Promise<GrantedClaim[]> {
    return this.claimAs('reserved', requests, markerTtlMs);
  }

  /**
   * Reserves the failure of an attempt a Worker of this owner has just started, for leaseMs.
   * @returns false when the attempt has already ended, or is not the job's current one.
   */
  async reserve(attempt: JobAttempt): Promise<boolean> {
    const job = this.keys.job(attempt.queueName, attempt.jobId);
    const reply = await this.scripts.run('reserve', [job, this.keys.reservation(attempt)], [this.owner, attempt.attemptsStarted, this.leaseMs]);
    return reply === 1;
  }

  /** Ends reservations this owner took and will not use. */
  async unreserve(attempts: readonly JobAttempt[]): Promise<void> {
    if (attempts.length > 0) await this.redis.del(...attempts.map((attempt) => this.keys.reservation(attempt)));
  }

  private async claimAs(mode: ClaimMode, requests: readonly ClaimRequest[], markerTtlMs: number): Promise<GrantedClaim[]> {
    if (requests.length === 0) return [];
    const keys = [this.keys.leases, ...requests.map((r) => this.keys.occurrence(r.occurrenceId))];
    const args: ScriptArg[] = [this.owner, this.leaseMs, mode];
    for (const { occurrenceId, snapshot, handlerKeys, failedAttempt } of requests) {
      const ttl = handlerKeys.length > 0 ? this.dedupTtlMs : markerTtlMs;
      const reservation = failedAttempt ? this.keys.reservation(failedAttempt) : '';
      args.push(occurrenceId, ttl, snapshot, reservation, handlerKeys.length, ...handlerKeys);
    }
    const occurrenceIds = requests.map((r) => r.occurrenceId);
    const reply = (await traced(tracing.claim, () => ({ occurrenceIds }), () => this.scripts.run('claim', keys, args))) as unknown[];
    return grantedClaims(reply, (position) => requests[position - 1].occurrenceId);
  }

  /**
   * The claim arguments of read-and-claim.lua: leases key, occurrence key prefix, owner,
   * leaseMs, the occurrence's ttl and the reservation key prefix.
   */
  readClaimArgs(): ScriptArg[] {
    return [this.keys.leases, this.keys.occurrencePrefix, this.owner, this.leaseMs, this.dedupTtlMs, this.keys.reservationPrefix];
  }

  /**
   * Releases claims taken before the occurrence was classified, of handlers that do not
   * want it (held by this owner, or expired), and stores each occurrence's snapshot where a
   * handler still needs it; an occurrence no handler wants stays as a marker for markerTtlMs.
   */
  async releaseUnwanted(requests: readonly UnwantedClaims[], markerTtlMs: number): Promise<void> {
    if (requests.length === 0) return;
    const keys = [this.keys.leases, ...requests.map((r) => this.keys.occurrence(r.occurrenceId))];
    const args: ScriptArg[] = [this.owner, markerTtlMs];
    for (const { occurrenceId, snapshot, handlerKeys } of requests) args.push(occurrenceId, snapshot, handlerKeys.length, ...handlerKeys);
    await this.scripts.run('releaseUnwanted', keys, args);
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
      const args: ScriptArg[] = [this.owner, this.dedupTtlMs];
      for (const { claim, settlement } of chunk) {
        const value =
          settlement.outcome === 'retry' ? settlement.nextAttempt : settlement.outcome === 'dead' ? settlement.record : '';
        args.push(claim.handlerKey, claim.occurrenceId, settlement.outcome, value);
      }
      this.scripts.run('settle', keys, args).then(
        (reply) => chunk.forEach(({ resolve }, i) => resolve((reply as number[])[i] === 1)),
        (error: unknown) => chunk.forEach(({ reject }) => reject(error)),
      );
    }
  }

  /** Forgets a dead letter; its handler never runs again for that occurrence. @returns false when there was none. */
  async discard(claim: HeldClaim): Promise<boolean> {
    const keys = [this.keys.occurrence(claim.occurrenceId), this.keys.deadLetters];
    return (await this.scripts.run('discard', keys, [claim.handlerKey, claim.occurrenceId, this.dedupTtlMs])) === 1;
  }

  /** Extends ('renew') or gives back ('release') claims in one round trip; returns those no longer ours. */
  async lease(claims: readonly HeldClaim[], mode: 'renew' | 'release'): Promise<HeldClaim[]> {
    if (claims.length === 0) return [];
    const keys = [this.keys.leases, ...claims.map((c) => this.keys.occurrence(c.occurrenceId))];
    const args = [this.owner, this.leaseMs, mode, ...claims.flatMap((c) => [c.handlerKey, c.occurrenceId])];
    const lost = (await this.scripts.run('lease', keys, args)) as number[];
    return lost.map((position) => claims[position - 1]);
  }

  /** Claims whose holder stopped renewing them. */
  async expired(limit: number): Promise<HeldClaim[]> {
    const members = (await this.scripts.run('expiredLeases', [this.keys.leases], [limit])) as string[];
    return members.map(parseClaimMember).filter((m): m is HeldClaim => m !== undefined);
  }

  /** For each occurrence, whether it is recorded (claimed, settled, or marked as seen by no handler). */
  async recorded(occurrenceIds: readonly string[]): Promise<boolean[]> {
    if (occurrenceIds.length === 0) return [];
    const reply = (await this.scripts.run('recorded', occurrenceIds.map((id) => this.keys.occurrence(id)), [])) as number[];
    return reply.map((exists) => exists === 1);
  }

  /** The stored snapshot of an occurrence, if it is still remembered. */
  async snapshot(occurrenceId: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.occurrence(occurrenceId), 'snapshot')) ?? undefined;
  }

  /** Drops the lease of a claim whose occurrence has expired; nothing could run it any more. */
  async dropLease(claim: HeldClaim): Promise<void> {
    const keys = [this.keys.leases, this.keys.occurrence(claim.occurrenceId)];
    await this.scripts.run('dropLease', keys, [claim.handlerKey, claim.occurrenceId]);
  }
}
