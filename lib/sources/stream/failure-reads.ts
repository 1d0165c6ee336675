import type { Job } from 'bullmq';
import type { ReadClaims } from '../../claims/claim.types.js';
import type { ReadAndClaim } from '../../claims/read-and-claim.js';
import type { FailureSignal, StoredFacts } from '../../classifier/failure-signal.js';
import type { FlowChildrenReader } from '../../classifier/flow-children.js';
import type { JobLoader } from '../../classifier/job-loader.js';
import type { RedisKeys } from '../../redis/redis-keys.js';
import { compareIds } from './stream-entry.js';

/**
 * Reads after the last one that held a failure during which the script still runs. It costs
 * two commands per read and saves a round trip per failure: worth it while failures come
 * often, not on a busy queue where one read in a hundred holds one.
 */
const READS_AFTER_A_FAILURE = 16;

/** Jobs the script found, by job key, with the claims taken for them. */
export type FoundJobs = Map<string, { job?: Job; facts: StoredFacts; claimed?: ReadClaims }>;

/**
 * Runs read-and-claim.lua right behind each blocking XREADGROUP, on the same connection:
 * Redis runs it the moment the read is served, and the failed jobs (and, when the stream
 * is the primary source, their claims) arrive with the entries. The classifier then asks
 * Redis nothing for them, and the dispatcher waits for nothing.
 */
export class ReadBehind {
  /** The last entry id each stream's reads handed this consumer: where the next script begins. */
  private readonly lastRead = new Map<string, string>();
  /** Reads left before the script pauses; it runs from the start (a catch-up is all failures). */
  private readsLeft = READS_AFTER_A_FAILURE;

  constructor(
    private readonly script: ReadAndClaim,
    private readonly keys: RedisKeys,
    private readonly jobs: Pick<JobLoader, 'fromScriptReply'>,
    private readonly children: Pick<FlowChildrenReader, 'decode'>,
  ) {}

  /**
   * Call right after sending the read, before awaiting it; undefined while failures are rare.
   * Never rejects: on error the classifier loads the jobs itself.
   */
  request(count: number): Promise<FoundJobs> | undefined {
    if (this.readsLeft <= 0) return undefined;
    return this.script.run(count, (stream) => this.lastRead.get(stream) ?? '0').then(
      (failures) => {
        const found: FoundJobs = new Map();
        for (const { queueName, jobId, hash, namedChild, children: listed, claimed } of failures) {
          const children = listed && this.children.decode(listed);
          // A job that does not decode is loaded (and isolated) by the classifier; its claims travel on.
          const job = hash.length > 0 ? this.decoded(queueName, jobId, hash) : undefined;
          const key = this.keys.job(queueName, jobId);
          // Two entries of one job in one read (it failed, was retried and failed again): the
          // script read the same job twice, and what either entry claimed is held here.
          const earlier = found.get(key);
          if (earlier?.claimed && claimed) earlier.claimed.granted.push(...claimed.granted);
          else if (job || claimed) found.set(key, { job, facts: { namedChild, children }, claimed });
        }
        return found;
      },
      () => new Map(),
    );
  }

  private decoded(queueName: string, jobId: string, hash: unknown[]): Job | undefined {
    try {
      return this.jobs.fromScriptReply(queueName, jobId, hash);
    } catch {
      return undefined;
    }
  }

  /**
   * What a read handed this consumer (the entries, and the failure signals made of them):
   * the next script starts after these entries, and each signal gets its job, facts and
   * claims where the script found them.
   */
  async received(pairs: readonly [string, unknown[]][], signals: readonly FailureSignal[], found?: Promise<FoundJobs>): Promise<void> {
    this.readsLeft = signals.length > 0 ? READS_AFTER_A_FAILURE : this.readsLeft - 1;
    for (const [stream, entries] of pairs) {
      const last: unknown = entries.at(-1);
      if (!Array.isArray(last) || typeof last[0] !== 'string') continue;
      const before = this.lastRead.get(stream);
      if (!before || compareIds(last[0], before) > 0) this.lastRead.set(stream, last[0]);
    }
    if (!found) return;
    const jobs = await found;
    for (const signal of signals) {
      const hit = signal.job ? undefined : jobs.get(this.keys.job(signal.queueName, signal.jobId));
      if (!hit) continue;
      if (hit.job) {
        signal.job = hit.job;
        signal.facts = hit.facts;
      }
      signal.claimed = hit.claimed;
    }
  }
}
