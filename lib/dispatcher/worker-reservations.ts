import { Logger } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { ClaimStore } from '../claims/claim.store.js';
import type { HandlerRegistry } from '../discovery/handler.registry.js';
import { type ReservationMessage, tracing } from '../diagnostics.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { JobAttempt, RedisKeys } from '../redis/redis-keys.js';

/**
 * What a reported failure may do with its reservation: start its handlers before they are
 * claimed ('run-now'); or claim them as the reserver ('claim-first': too late to start first,
 * but claims others took in this owner's name meanwhile are this owner's); or nothing ('none').
 */
export type ReservationUse = 'run-now' | 'claim-first' | 'none';

/**
 * The part of a reservation's life in which its failure may start the handlers first; the
 * rest is for the claim that records them to land, as a lease is renewed a third early.
 */
const USABLE_PART = 2 / 3;

interface Reservation {
  attempt: JobAttempt;
  /** When it was sent: it lives in Redis for leaseMs from a moment after this. */
  sentAt: number;
  taken: Promise<boolean>;
}

/**
 * The reservations this process's Workers take as they start flow jobs (ClaimStore.reserve).
 * A failure a Worker here reports within the first two thirds of its reservation's life
 * starts its handlers at once, without waiting for a claim: the claim after a failed event
 * was the one round trip between a Worker's failure and its handler, at the moment Redis
 * and the Workers are busiest with the parent the failure released.
 */
export class WorkerReservations {
  private readonly logger = new Logger('FlowFailureModule');
  /** In the order taken, so the oldest are dropped first. */
  private readonly reservations = new Map<string, Reservation>();
  private readonly usableMs: number;

  constructor(
    private readonly claims: ClaimStore,
    private readonly registry: HandlerRegistry,
    private readonly keys: RedisKeys,
    private readonly leaseMs: number,
    /** The `workerReservations` option. */
    private readonly enabled: boolean,
  ) {
    this.usableMs = Math.floor(leaseMs * USABLE_PART);
  }

  /** A Worker here started a job: its failure is reserved when a handler may want it. */
  jobStarted(queueName: string, job: Job): void {
    if (this.enabled && job.id && job.attemptsStarted > 0 && this.failureWanted(queueName, job)) {
      this.reserve({ queueName, jobId: job.id, attemptsStarted: job.attemptsStarted });
    }
  }

  /** A Worker here has just started this attempt. Not awaited: the reservation travels while the job runs. */
  private reserve(attempt: JobAttempt): void {
    const now = performance.now();
    // Expired in Redis by now, and never answered: a failure report no longer needs them.
    this.dropOlderThan(now - this.leaseMs);
    const taken = this.claims.reserve(attempt).catch((error: unknown) => {
      this.logger.warn(MESSAGES.reserveFailed(attempt.queueName, attempt.jobId, error));
      return false;
    });
    this.reservations.set(key(attempt), { attempt, sentAt: now, taken });
    if (tracing.reservation.hasSubscribers) tracing.reservation.publish({ owner: this.claims.owner, attempt } satisfies ReservationMessage);
  }

  /**
   * How the failure of this attempt, reported by a Worker here, uses its reservation: its
   * handlers start before they are claimed when it was reserved here early enough that the
   * claim recording them lands while the reservation lives. Each reservation answers once.
   */
  async use(attempt: JobAttempt): Promise<ReservationUse> {
    const use = await this.useOf(attempt);
    if (tracing.reservation.hasSubscribers) tracing.reservation.publish({ owner: this.claims.owner, attempt, use } satisfies ReservationMessage);
    return use;
  }

  private async useOf(attempt: JobAttempt): Promise<ReservationUse> {
    const reservation = this.reservations.get(key(attempt));
    if (!reservation) return 'none';
    this.reservations.delete(key(attempt));
    if (!(await reservation.taken)) return 'none';
    return performance.now() - reservation.sentAt < this.usableMs ? 'run-now' : 'claim-first';
  }

  /**
   * A failure reported here that this instance will not handle (no room): its reservation
   * ends now, so that another replica (or this one's stream reader, later) claims it at once.
   */
  giveBack(attempt: JobAttempt): void {
    const reservation = this.reservations.get(key(attempt));
    if (!reservation) return;
    this.reservations.delete(key(attempt));
    void reservation.taken
      .then((taken) => (taken ? this.claims.unreserve([attempt]) : undefined))
      .catch((error: unknown) => this.logger.warn(MESSAGES.reservationsNotReturned(error)));
  }

  /**
   * Gives back the reservations no failure has used, as the Workers stop being watched: a
   * job still running fails unwatched here, and is claimed by another replica at once
   * instead of in this owner's name, to be taken over only once the reservation ran out.
   */
  async release(): Promise<void> {
    const unused = [...this.reservations.values()];
    this.reservations.clear();
    if (unused.length > 0) await this.claims.unreserve(unused.map((r) => r.attempt));
  }

  /**
   * Whether a handler may want the failure of a job a Worker starts, as far as the job tells
   * without asking Redis: a child, or a parent failing on a child's failure (BullMQ's deferred
   * failure). A parent failing in its own processor is claimed as it fails.
   */
  private failureWanted(queueName: string, job: Job): boolean {
    const parentQueueName = this.keys.parentOf(job)?.queueName;
    return (
      (parentQueueName !== undefined && this.registry.couldMatch({ kind: 'child-failed', queueName, jobName: job.name, parentQueueName })) ||
      (job.deferredFailure !== undefined && this.registry.couldMatch({ kind: 'parent-failed', queueName, jobName: job.name, causedByChild: true }))
    );
  }

  private dropOlderThan(time: number): void {
    for (const [id, reservation] of this.reservations) {
      if (reservation.sentAt >= time) return;
      this.reservations.delete(id);
    }
  }
}

function key({ queueName, jobId, attemptsStarted }: JobAttempt): string {
  return `${queueName}:${jobId}:${attemptsStarted}`;
}
