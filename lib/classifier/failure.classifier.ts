import type { Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { FlowChildren, JobRef, RootCause } from '../interfaces/failure-events.interface.js';
import { occurrenceId } from '../claims/formats.js';
import { traced, tracing } from '../diagnostics.js';
import { isTransientRedisError } from '../redis/redis-errors.js';
import type { ParsedJobKey, RedisKeys } from '../redis/redis-keys.js';
import type { BadJobs } from './bad-jobs.js';
import { type FlowChildrenReader, hasChildren } from './flow-children.js';
import type { FailureOccurrence } from './failure-occurrence.js';
import type { FailureSignal, StoredFacts } from './failure-signal.js';
import type { JobLoader } from './job-loader.js';
import { parentPolicyOf } from './parent-policy.js';
import type { RecentFailures } from './recent-failures.js';

/** Deeper than any sane flow; stops a corrupt, cyclic chain of deferred failures. */
const MAX_CASCADE_DEPTH = 64;
/**
 * How far a stream entry's time (Redis's clock) may be from the `finishedOn` (the Worker's
 * clock) of the failure it reports to count as the same failure. Small, because a job
 * retried and failed again inside the window would be taken for the first failure here
 * (its own Worker, or the sweep, still delivers it).
 */
const SAME_FAILURE_MS = 100;
/** Children read ahead for parents a Worker here started, at most: the oldest go first. */
const CHILDREN_READ_AHEAD = 1000;

/**
 * Whether any handler could want this job's failure as a parent, caused by a child or not
 * (`jobName` undefined: not loaded yet, any name): if none, its children need not be read.
 */
export type ParentInterest = (queueName: string, jobName: string | undefined, causedByChild: boolean) => boolean;

/**
 * Turns "job X of queue Q may have failed terminally" into occurrences: is the job a
 * parent, a child, both or neither, and which leaf started the cascade.
 */
export class FailureClassifier {
  /** Children read as Workers here started parents that a child has failed already, by job key and attempt. */
  private readonly childrenReadAhead = new Map<string, Promise<FlowChildren>>();

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly loader: JobLoader,
    private readonly children: FlowChildrenReader,
    private readonly keys: RedisKeys,
    private readonly recent: RecentFailures,
    private readonly parentInterest: ParentInterest,
    private readonly badJobs: BadJobs,
  ) {}

  /**
   * A Worker here started a job that BullMQ has failed already through a child (its
   * deferred failure): the job fails in a moment, without running its processor. Its
   * children are read now, while BullMQ records that failure, so that the Worker's report
   * starts the handlers without a round trip of its own. They are its children as it fails:
   * the read travels with BullMQ's own commands of that failure.
   */
  parentStarting(queueName: string, job: Job): void {
    if (!job.id || !this.keys.parseDeferredFailure(job.deferredFailure) || !this.parentInterest(queueName, job.name, true)) return;
    if (this.childrenReadAhead.size >= CHILDREN_READ_AHEAD) this.childrenReadAhead.delete(this.childrenReadAhead.keys().next().value as string);
    const key = this.keys.job(queueName, job.id);
    const read = this.children.read(key);
    read.catch(() => undefined); // awaited by the report, or read again then
    this.childrenReadAhead.set(`${key}:${job.attemptsStarted}`, read);
  }

  /** A failure this instance passes on (no room): its children read ahead are not needed here. */
  dropReadAhead(queueName: string, job: Job): void {
    if (job.id) this.childrenReadAhead.delete(`${this.keys.job(queueName, job.id)}:${job.attemptsStarted}`);
  }

  /** The children read as the Worker started this attempt, once (a later report reads them anew). */
  private readAhead(key: string, job: Job | undefined): Promise<FlowChildren> | undefined {
    if (!job) return undefined;
    const id = `${key}:${job.attemptsStarted}`;
    const read = this.childrenReadAhead.get(id);
    this.childrenReadAhead.delete(id);
    return read?.catch(() => this.children.read(key));
  }

  classify(signals: readonly FailureSignal[]): Promise<FailureOccurrence[]> {
    this.rememberLeaves(signals);
    return traced(tracing.classify, () => ({ signals }), () => this.classifyAll(signals));
  }

  /**
   * A leaf a Worker here just failed is remembered as a root cause at once, before its own
   * classification asks Redis anything: the parent it fails is reported moments later, and
   * its walk down must find the leaf here (removed by removeOnFail, nothing else has it).
   */
  private rememberLeaves(signals: readonly FailureSignal[]): void {
    for (const { job, queueName, jobId } of signals) {
      if (!job?.finishedOn || typeof job.failedReason !== 'string' || this.keys.parseDeferredFailure(job.deferredFailure)) continue;
      const key = this.keys.job(queueName, jobId);
      this.recent.remember(key, job.finishedOn, causeOf({ prefix: this.keys.prefix, queueName, jobId, key }, job));
    }
  }

  private async classifyAll(signals: readonly FailureSignal[]): Promise<FailureOccurrence[]> {
    // The jobs of this batch: a Worker's job in memory is used as it is, and one loaded
    // (or being loaded: the loader shares those) is not asked for again by a root-cause walk.
    const loads = new Map<string, Promise<Job | undefined>>();
    const load = (ref: ParsedJobKey): Promise<Job | undefined> => {
      let pending = loads.get(ref.key);
      if (!pending) {
        pending = this.loader.load(ref.queueName, ref.jobId, ref.prefix);
        loads.set(ref.key, pending);
      }
      return pending;
    };
    for (const signal of signals) {
      if (signal.job) loads.set(this.keys.job(signal.queueName, signal.jobId), Promise.resolve(signal.job));
    }
    const occurrences = await Promise.all(signals.map((signal) => this.classifyIsolated(signal, load)));
    return occurrences.filter((o): o is FailureOccurrence => o !== undefined);
  }

  /**
   * One failure whose data breaks its classification is set aside (BadJobs), not the batch
   * around it; a Redis that cannot answer fails the batch, to be read again.
   */
  private async classifyIsolated(signal: FailureSignal, load: (ref: ParsedJobKey) => Promise<Job | undefined>): Promise<FailureOccurrence | undefined> {
    try {
      return await this.classifyOne(signal, load);
    } catch (error) {
      if (isTransientRedisError(error)) throw error;
      await this.badJobs.unclassifiable(signal, error);
      return undefined;
    }
  }

  private async classifyOne(
    signal: FailureSignal,
    load: (ref: ParsedJobKey) => Promise<Job | undefined>,
  ): Promise<FailureOccurrence | undefined> {
    const key = this.keys.job(signal.queueName, signal.jobId);
    // A failure a Worker here reported: the stream's entry for it adds nothing (unless its
    // read took the claims: then it, not the Worker's report, holds them).
    const holdsClaims = signal.claimed !== undefined;
    if (signal.reportedAt !== undefined && !holdsClaims && (await this.recent.recordedHere(key, signal.reportedAt, SAME_FAILURE_MS))) {
      return undefined;
    }
    // What can be asked before the job is loaded is asked now, so it travels with the load: one round trip.
    const inMemory = this.keys.parseDeferredFailure(signal.job?.deferredFailure);
    const reported = inMemory ? undefined : this.keys.parseDeferredFailure(signal.failedReason);
    const reportedIsFailedChild = reported ? this.isFailedChild(key, reported, signal.facts) : undefined;
    const named = inMemory ?? reported;
    // A child named as the cause makes the job a parent; else whether it had children decides.
    const wantsParent = this.parentInterest(signal.queueName, signal.job?.name, named !== undefined);
    const early = signal.source === 'worker' ? this.readAhead(key, signal.job) : undefined;
    const children = wantsParent ? (early ?? this.childrenOf(key, signal.facts)) : undefined;
    for (const pending of [reportedIsFailedChild, children]) pending?.catch(() => undefined); // awaited only when needed
    const job = await load({ prefix: this.keys.prefix, queueName: signal.queueName, jobId: signal.jobId, key });
    // Gone (removed, and no Worker of ours held it in memory), or no longer failed (retried since).
    if (!job?.finishedOn || typeof job.failedReason !== 'string') return undefined;
    // Its Worker here reported it while the load was under way (now the exact failure is known).
    if (signal.source !== 'worker' && !holdsClaims && (await this.recent.recordedHere(key, job.finishedOn, 0))) return undefined;

    const id = occurrenceId(signal.queueName, signal.jobId, job.finishedOn);
    const unreadable = this.loader.unreadableFields(job);
    if (unreadable) this.badJobs.unreadable(signal.queueName, signal.jobId, unreadable);
    const base = {
      id,
      queueName: signal.queueName,
      jobId: signal.jobId,
      jobName: job.name,
      // A job decoded without its unreadable fields is not the job: handlers get none.
      job: unreadable ? undefined : job,
      failedReason: job.failedReason,
      source: signal.source,
    };
    const occurrence: FailureOccurrence = {
      id,
      queueName: signal.queueName,
      jobId: signal.jobId,
      finishedOn: job.finishedOn,
      attemptsStarted: job.attemptsStarted,
      source: signal.source,
      job: base.job,
    };

    const parent = this.keys.parentOf(job);
    if (parent) {
      occurrence.childFailed = {
        ...base,
        kind: 'child-failed',
        stacktrace: job.stacktrace ?? undefined,
        attemptsMade: job.attemptsMade,
        parent: toRef(parent),
        parentPolicy: parentPolicyOf(job),
      };
    }

    const failedChild = await this.failedChildOf(job, key, reported && { child: reported, confirmed: reportedIsFailedChild }, signal.facts);
    const stored = signal.facts?.rootCause;
    const rootCause = failedChild && (failedChild.key === signal.facts?.namedChild?.key && stored ? stored : await this.rootCause(failedChild, load));
    // Asked again now that the name and the cause are known; the children read early serve either way.
    const wanted = this.parentInterest(signal.queueName, job.name, failedChild !== undefined);
    const listed = wanted ? await (children ?? this.childrenOf(key, signal.facts)) : undefined;
    if (listed && (failedChild || hasChildren(listed))) {
      occurrence.parentFailed = {
        ...base,
        kind: 'parent-failed',
        causedByChild: failedChild !== undefined,
        failedChild: failedChild && toRef(failedChild),
        rootCause,
        children: listed,
      };
    }
    // What this job's parent, failing next, will want to know.
    this.recent.remember(key, job.finishedOn, failedChild ? rootCause : causeOf({ prefix: this.keys.prefix, queueName: signal.queueName, jobId: signal.jobId, key }, job));
    return occurrence;
  }

  /**
   * The child whose failure failed this job. A Worker's in-memory job still carries
   * BullMQ's deferred failure; a stored one has lost it (BullMQ deletes it on failing), so
   * the reason text is trusted only when the child is in the parent's `:unsuccessful` set.
   */
  private async failedChildOf(
    job: Job,
    key: string,
    asked?: { child: ParsedJobKey; confirmed?: Promise<boolean> },
    facts?: StoredFacts,
  ): Promise<ParsedJobKey | undefined> {
    const deferred = this.keys.parseDeferredFailure(job.deferredFailure);
    if (deferred) return deferred;
    const named = this.keys.parseDeferredFailure(job.failedReason);
    if (!named) return undefined;
    const confirmed = asked?.confirmed && asked.child.key === named.key ? asked.confirmed : this.isFailedChild(key, named, facts);
    return (await confirmed) ? named : undefined;
  }

  private async isFailedChild(key: string, child: ParsedJobKey, facts?: StoredFacts): Promise<boolean> {
    if (facts?.namedChild?.key === child.key) return facts.namedChild.failed;
    return (await this.redis.zscore(this.keys.failedChildren(key), child.key)) !== null;
  }

  private async childrenOf(key: string, facts?: StoredFacts): Promise<FlowChildren> {
    return facts?.children ?? this.children.read(key);
  }

  /** Walks down the deferred failures; each level only names its immediate child. */
  private async rootCause(
    child: ParsedJobKey,
    load: (ref: ParsedJobKey) => Promise<Job | undefined>,
  ): Promise<RootCause | undefined> {
    let cause: RootCause | undefined;
    let next: ParsedJobKey | undefined = child;
    for (let depth = 0; next && depth < MAX_CASCADE_DEPTH; depth++) {
      const known = this.recent.rootCauseOf(next.key);
      if (known) return known;
      const job = await load(next);
      if (!job) break;
      cause = causeOf(next, job);
      next = await this.failedChildOf(job, next.key);
    }
    return cause;
  }
}

/** A failed job as a root cause. */
function causeOf({ queueName, jobId, key }: ParsedJobKey, job: Job): RootCause {
  return { queueName, jobId, key, jobName: job.name, failedReason: job.failedReason ?? '', stacktrace: job.stacktrace ?? undefined };
}

function toRef({ queueName, jobId, key }: ParsedJobKey): JobRef {
  return { queueName, jobId, key };
}
