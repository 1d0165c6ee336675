import type { Cluster, Redis } from 'ioredis';
import { traced, tracing } from '../diagnostics.js';
import type { JobAttempt, RedisKeys } from '../redis/redis-keys.js';
import type { ClaimRequest, ClaimResult, GrantedClaim, HeldClaim, SettleOutcome, UnwantedClaims } from './claim.types.js';
import { grantedClaims } from './claim.types.js';
import { chunks } from '../util/chunks.js';
import { parseClaimMember } from './formats.js';
import type { LuaScripts, ScriptArg } from './lua-scripts.js';

interface PendingSettlement {
  claim: HeldClaim;
  settlement: SettleOutcome;
  resolve: (stillHeld: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * Items per script call. Every call over a set of unbounded size is cut into these: a
 * catch-up's claims and outcomes travel in a few calls, none holding Redis for long, and
 * no call carries so many arguments that ioredis's pipeline breaks (tens of thousands
 * overflow its stack and leave the replies misaligned).
 */
const CLAIMS_PER_CALL = 50;
const SETTLES_PER_CALL = 100;
const KEYS_PER_CALL = 500;

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
    /** How long an occurrence with a dead handler is kept: the dead letters' retention. */
    private readonly deadLetterTtlMs: number,
    /** LeaseTrust.takeExpiredOn: whether (on which server) a claim may take an expired lease. */
    private readonly takeExpiredOn: () => string,
  ) {}

  /**
   * Records each occurrence (idempotent) and takes the claims that are free, all in one
   * round trip. An occurrence with no handlers is still recorded, for `markerTtlMs`, so the
   * sweep knows it was seen.
   */
  claim(requests: readonly ClaimRequest[], options: { revive?: boolean; markerTtlMs: number }): Promise<ClaimResult> {
    return this.claimAs(options.revive ? 'revive' : 'claim', requests, options.markerTtlMs);
  }

  /**
   * Claims for the handlers this owner started on its reservation (see `reserve`), and ends
   * the reservation. @returns the claims that are this owner's; any other was taken by
   * someone else after the reservation had lapsed.
   */
  claimReserved(requests: readonly ClaimRequest[], markerTtlMs: number): Promise<ClaimResult> {
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
    for (const chunk of chunks(attempts, KEYS_PER_CALL)) await this.redis.del(...chunk.map((attempt) => this.keys.reservation(attempt)));
  }

  /** In calls of CLAIMS_PER_CALL occurrences, sent together. */
  private async claimAs(mode: ClaimMode, requests: readonly ClaimRequest[], markerTtlMs: number): Promise<ClaimResult> {
    const results = await Promise.all(chunks(requests, CLAIMS_PER_CALL).map((chunk) => this.claimChunk(mode, chunk, markerTtlMs)));
    return { granted: results.flatMap((r) => r.granted), firstRecorded: results.flatMap((r) => r.firstRecorded) };
  }

  private async claimChunk(mode: ClaimMode, requests: readonly ClaimRequest[], markerTtlMs: number): Promise<ClaimResult> {
    const keys = [this.keys.leases, ...requests.map((r) => this.keys.occurrence(r.occurrenceId))];
    const args: ScriptArg[] = [this.owner, this.leaseMs, mode, this.takeExpiredOn()];
    for (const { occurrenceId, snapshot, handlerKeys, failedAttempt } of requests) {
      const ttl = handlerKeys.length > 0 ? this.dedupTtlMs : markerTtlMs;
      const reservation = failedAttempt ? this.keys.reservation(failedAttempt) : '';
      args.push(occurrenceId, ttl, snapshot, reservation, handlerKeys.length, ...handlerKeys);
    }
    const occurrenceIds = requests.map((r) => r.occurrenceId);
    const [granted, recorded] = (await traced(tracing.claim, () => ({ occurrenceIds }), () => this.scripts.run('claim', keys, args))) as [unknown[], number[]];
    return {
      granted: grantedClaims(granted, (position) => requests[position - 1].occurrenceId),
      firstRecorded: recorded.map((position) => requests[position - 1].occurrenceId),
    };
  }

  /**
   * The claim arguments of read-and-claim.lua, for a read about to be sent: leases key,
   * occurrence key prefix, owner, leaseMs, the occurrence's ttl, the reservation key prefix
   * and takeExpiredOn.
   */
  readClaimArgs(): ScriptArg[] {
    return [this.keys.leases, this.keys.occurrencePrefix, this.owner, this.leaseMs, this.dedupTtlMs, this.keys.reservationPrefix, this.takeExpiredOn()];
  }

  /**
   * Releases claims taken before the occurrence was classified, of handlers that do not
   * want it (held by this owner, or expired), and stores each occurrence's snapshot where a
   * handler still needs it; an occurrence no handler wants stays as a marker for markerTtlMs.
   */
  async releaseUnwanted(requests: readonly UnwantedClaims[], markerTtlMs: number): Promise<void> {
    for (const chunk of chunks(requests, CLAIMS_PER_CALL)) {
      const keys = [this.keys.leases, ...chunk.map((r) => this.keys.occurrence(r.occurrenceId))];
      const args: ScriptArg[] = [this.owner, markerTtlMs];
      for (const { occurrenceId, snapshot, handlerKeys } of chunk) args.push(occurrenceId, snapshot, handlerKeys.length, ...handlerKeys);
      await this.scripts.run('releaseUnwanted', keys, args);
    }
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
    for (const chunk of chunks(pending, SETTLES_PER_CALL)) {
      const keys = [this.keys.leases, ...chunk.map(({ claim }) => this.keys.occurrence(claim.occurrenceId))];
      const args: ScriptArg[] = [this.owner, this.dedupTtlMs, this.deadLetterTtlMs];
      for (const { claim, settlement } of chunk) {
        args.push(claim.handlerKey, claim.occurrenceId, settlement.outcome);
      }
      this.scripts.run('settle', keys, args).then(
        (reply) => chunk.forEach(({ resolve }, i) => resolve((reply as number[])[i] === 1)),
        (error: unknown) => chunk.forEach(({ reject }) => reject(error)),
      );
    }
  }

  /**
   * Parks claims of this owner, held or parked (park.lua): a handler waiting for its backoff,
   * or for pending children. Anyone may take one `delayMs` from now; this owner sooner.
   * @returns for each, whether it was still ours
   */
  async park(claims: readonly (HeldClaim & { delayMs: number; attemptsMade: number })[]): Promise<boolean[]> {
    const parked: boolean[] = [];
    for (const chunk of chunks(claims, KEYS_PER_CALL)) {
      const keys = [this.keys.leases, ...chunk.map((c) => this.keys.occurrence(c.occurrenceId))];
      const args = [this.owner, ...chunk.flatMap((c) => [c.handlerKey, c.occurrenceId, c.delayMs, c.attemptsMade])];
      parked.push(...((await this.scripts.run('park', keys, args)) as number[]).map((flag) => flag === 1));
    }
    return parked;
  }

  /**
   * Takes back claims this owner parked (claimOccurrence lets their owner take them any
   * time, and counts the attempt that follows). @returns those still ours, with that attempt
   */
  async takeBack(claims: readonly HeldClaim[]): Promise<GrantedClaim[]> {
    const requests = claims.map(({ handlerKey, occurrenceId }) => ({ occurrenceId, snapshot: '', handlerKeys: [handlerKey] }));
    // Each request names a handler: the occurrence keeps dedupTtlMs, not a marker's TTL.
    return (await this.claimAs('claim', requests, this.dedupTtlMs)).granted;
  }

  /** Marks a dead letter's claim discarded: its handler never runs again for that occurrence. @returns false when it was not dead */
  async discard(claim: HeldClaim): Promise<boolean> {
    return (await this.scripts.run('discard', [this.keys.occurrence(claim.occurrenceId)], [claim.handlerKey, this.dedupTtlMs])) === 1;
  }

  /**
   * Extends ('renew') or gives back ('release') claims, KEYS_PER_CALL at a time, one call
   * after another; returns those no longer ours.
   */
  async lease(claims: readonly HeldClaim[], mode: 'renew' | 'release'): Promise<HeldClaim[]> {
    const lost: HeldClaim[] = [];
    for (const chunk of chunks(claims, KEYS_PER_CALL)) {
      const keys = [this.keys.leases, ...chunk.map((c) => this.keys.occurrence(c.occurrenceId))];
      const args = [this.owner, this.leaseMs, mode, ...chunk.flatMap((c) => [c.handlerKey, c.occurrenceId])];
      const positions = (await this.scripts.run('lease', keys, args)) as number[];
      lost.push(...positions.map((position) => chunk[position - 1]));
    }
    return lost;
  }

  /** Claims whose holder stopped renewing them; `handedBackOnly`: those their holder handed back (lease.lua 'release'). */
  async expired(limit: number, handedBackOnly = false): Promise<HeldClaim[]> {
    const members = (await this.scripts.run('expiredLeases', [this.keys.leases], [limit, handedBackOnly ? '1' : '0'])) as string[];
    return members.map(parseClaimMember).filter((m): m is HeldClaim => m !== undefined);
  }

  /** For each occurrence, whether it is recorded (claimed, settled, or marked as seen by no handler). */
  async recorded(occurrenceIds: readonly string[]): Promise<boolean[]> {
    const replies = await Promise.all(
      chunks(occurrenceIds, KEYS_PER_CALL).map((chunk) => this.scripts.run('recorded', chunk.map((id) => this.keys.occurrence(id)), [])),
    );
    return (replies as number[][]).flat().map((exists) => exists === 1);
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
