import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobLoader } from '../classifier/job-loader.js';
import { CHILDREN_BOOKKEEPING, failedChildrenKey, jobKey } from '../redis/job-key.js';
import type { ModuleKeys } from '../redis/module-keys.js';
import { type ReadClaims, grantedClaims } from '../dispatcher/claim.store.js';
import type { FailureSignal, StoredFacts } from './failure-signal.js';
import { compareIds } from './stream-entry.js';
import { READ_FAILED_JOBS } from './stream-scripts.js';

type ScriptFn = (...args: (string | number)[]) => Promise<unknown[]>;

/**
 * Reads after the last one that held a failure during which the script still runs. It costs
 * two commands per read and saves a round trip per failure: worth it while failures come
 * often, not on a busy queue where one read in a hundred holds one.
 */
const READS_AFTER_A_FAILURE = 16;

/** Jobs found by one prefetch, by job key, with the claims taken for them. */
export type PrefetchedJobs = Map<string, { job: Job; facts: StoredFacts; claimed?: ReadClaims }>;

/** How the script claims what it reads, when the stream is the primary source (see READ_FAILED_JOBS). */
export interface ReadClaimRules {
  /** ClaimStore.claimArgs: the claim store's keys, owner and times. */
  args: readonly (string | number)[];
  /** Every handler that may want a failure of this queue, as a child or as a parent: all are claimed, and the dispatcher forgets those that do not match. */
  candidates(queueName: string): readonly string[];
}

/**
 * Reads the failed jobs of the entries a blocking XREADGROUP is about to hand this
 * consumer, with a script sent right behind the read on the same connection: Redis runs
 * it the moment the read is served, and the jobs arrive with the entries (see
 * READ_FAILED_JOBS). The classifier then asks Redis nothing for them.
 */
export class FailedJobsPrefetch {
  /** The last entry id each stream's reads handed this consumer: where the next read's jobs begin. */
  private readonly lastRead = new Map<string, string>();
  /** Every watched stream, in the order the script's replies number them. */
  private readonly streams: string[];
  /** Reads left before the script pauses; it runs from the start (a catch-up is all failures). */
  private readsLeft = READS_AFTER_A_FAILURE;
  private readonly script: ScriptFn;
  /** The script's arguments after `count` that every read repeats: children key suffixes, claim rules. */
  private readonly sharedArgs: (string | number)[];
  /** Per stream, what follows where to start: queue, job key prefix, whether to ask for children, handlers to claim. */
  private readonly streamArgs: (string | number)[][];

  constructor(
    blocking: Redis,
    private readonly keys: ModuleKeys,
    private readonly consumer: string,
    private readonly queueOfStream: ReadonlyMap<string, string>,
    private readonly jobs: Pick<JobLoader, 'fromScriptReply'>,
    /** Whether a handler may want a failed job of this queue as a parent (then whether it had children is asked). */
    parentInterest: (queueName: string) => boolean,
    /** Absent: the script only reads, and the dispatcher claims. */
    claimRules?: ReadClaimRules,
  ) {
    this.streams = [...queueOfStream.keys()];
    // Asked once: the handlers are all known by the time a source is built.
    this.sharedArgs = [failedChildrenKey(''), CHILDREN_BOOKKEEPING.length, ...CHILDREN_BOOKKEEPING.map((suffix) => `:${suffix}`)];
    this.sharedArgs.push(...(claimRules ? ['1', ...claimRules.args] : ['0']));
    this.streamArgs = this.streams.map((stream) => {
      const queue = queueOfStream.get(stream) as string;
      const candidates = claimRules?.candidates(queue) ?? [];
      return [queue, jobKey(keys.prefix, queue, ''), parentInterest(queue) ? '1' : '0', candidates.length, ...candidates];
    });
    blocking.defineCommand('ffReadFailedJobs', { lua: READ_FAILED_JOBS });
    const command = (blocking as unknown as Record<string, ScriptFn>).ffReadFailedJobs;
    this.script = (...args) => command.apply(blocking, args);
  }

  /**
   * Call right after sending the read, before awaiting it; undefined while failures are rare.
   * Never rejects: on error the classifier loads the jobs itself.
   */
  request(count: number): Promise<PrefetchedJobs> | undefined {
    if (this.readsLeft <= 0) return undefined;
    const streams = this.streams;
    const args: (string | number)[] = [this.keys.group, this.consumer, count, ...this.sharedArgs];
    streams.forEach((stream, i) => args.push(this.lastRead.get(stream) ?? '0', ...this.streamArgs[i]));
    return this.script(streams.length, ...streams, ...args).then(
      (reply) => this.decode(reply),
      () => new Map(),
    );
  }

  /**
   * What a read handed this consumer (the entries, and the failure signals made of them):
   * the next prefetch starts after these entries, and each signal gets its job and facts
   * where `prefetched` found them.
   */
  async received(
    pairs: readonly [string, unknown[]][],
    signals: readonly FailureSignal[],
    prefetched?: Promise<PrefetchedJobs>,
  ): Promise<void> {
    this.readsLeft = signals.length > 0 ? READS_AFTER_A_FAILURE : this.readsLeft - 1;
    for (const [stream, entries] of pairs) {
      const last: unknown = entries.at(-1);
      if (!Array.isArray(last) || typeof last[0] !== 'string') continue;
      const before = this.lastRead.get(stream);
      if (!before || compareIds(last[0], before) > 0) this.lastRead.set(stream, last[0]);
    }
    if (!prefetched) return;
    const found = await prefetched;
    for (const signal of signals) {
      const hit = signal.job ? undefined : found.get(jobKey(this.keys.prefix, signal.queueName, signal.jobId));
      if (!hit) continue;
      signal.job = hit.job;
      signal.facts = hit.facts;
      signal.claimed = hit.claimed;
    }
  }

  private decode(reply: unknown[]): PrefetchedJobs {
    const found: PrefetchedJobs = new Map();
    for (let i = 0; i + 7 < reply.length; i += 8) {
      const queue = this.queueOfStream.get(this.streams[Number(reply[i]) - 1]);
      const jobId = String(reply[i + 1]);
      const job = queue && this.jobs.fromScriptReply(this.keys.prefix, queue, jobId, reply[i + 2] as unknown[]);
      if (!queue || !job) continue;
      const named = String(reply[i + 3]);
      const hadChildren = Number(reply[i + 5]);
      const occurrenceId = String(reply[i + 6]);
      found.set(jobKey(this.keys.prefix, queue, jobId), {
        job,
        facts: {
          namedChild: named === '' ? undefined : { key: named, failed: Number(reply[i + 4]) === 1 },
          hadChildren: hadChildren < 0 ? undefined : hadChildren === 1,
        },
        claimed: occurrenceId === '' ? undefined : { occurrenceId, granted: grantedClaims(reply[i + 7] as unknown[], () => occurrenceId) },
      });
    }
    return found;
  }
}
