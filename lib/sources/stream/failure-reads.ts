import type { Job } from 'bullmq';
import type { ReadClaims } from '../../claims/claim.types.js';
import type { ReadAndClaim, ReadFailure, StoredRootCause } from '../../claims/read-and-claim.js';
import type { FailureSignal, StoredFacts } from '../../classifier/failure-signal.js';
import type { FlowChildrenReader } from '../../classifier/flow-children.js';
import type { JobLoader } from '../../classifier/job-loader.js';
import type { RootCause } from '../../interfaces/failure-events.interface.js';
import type { RedisKeys } from '../../redis/redis-keys.js';
import { compareIds, idTime } from './stream-entry.js';

/**
 * Reads after the last one that held a failure during which the script still runs. It costs
 * two commands per read and saves a round trip per failure: worth it while failures come
 * often, not on a busy queue where one read in a hundred holds one.
 */
const READS_AFTER_A_FAILURE = 16;

/** Jobs the script found, by job key, with the claims taken for them. */
export type FoundJobs = Map<string, { job?: Job; facts: StoredFacts; claimed?: ReadClaims }>;

/** What the script behind a blocking read found. */
export interface ReadBehind {
  jobs: FoundJobs;
  /** Entries it read on, of the streams the blocking read did not return: they belong to that read. */
  readOn: [stream: string, entries: unknown[]][];
  /**
   * The script failed. It may have read on before it did: those entries are this
   * consumer's, pending, and only a read of its own pending entries hands them back.
   */
  failed: boolean;
}

/** A catch-up read: its failure signals, how many entries it went through, and whether a stream had more. */
export interface CatchUpRead {
  signals: FailureSignal[];
  entries: number;
  full: boolean;
  /** Failure entries without a job id: `[stream, entry id]`. */
  malformed: [string, string][];
}

/**
 * The stream source's reads through read-and-claim.lua, on the blocking connection. At the
 * head of the streams the script runs right behind each blocking XREADGROUP (`request`):
 * Redis runs it the moment the read is served, and the failed jobs (and, when the stream
 * is the primary source, their claims) arrive with the entries, along with the new entries
 * of the streams the read did not return (`readOn`). During a catch-up it reads
 * alone (`catchUp`): it claims and acknowledges in Redis, and only the failures that took a
 * claim come back, not the thousands of other entries around them. Either way the
 * classifier asks Redis nothing for these failures, and the dispatcher waits for nothing.
 */
export class FailureReads {
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
  request(count: number, room: number): Promise<ReadBehind> | undefined {
    if (this.readsLeft <= 0) return undefined;
    return this.script.behind(count, room, (stream) => this.lastRead.get(stream) ?? '0').then(
      ({ streams, failures }): ReadBehind => {
        const jobs: FoundJobs = new Map();
        for (const failure of failures) {
          if (failure.jobId === '') continue; // the reader's own parse reports it
          const { job, facts } = this.unpack(failure);
          const key = this.keys.job(failure.queueName, failure.jobId);
          // Two entries of one job in one read (it failed, was retried and failed again): the
          // script read the same job twice, and what either entry claimed is held here.
          const earlier = jobs.get(key);
          if (earlier?.claimed && failure.claimed) earlier.claimed.granted.push(...failure.claimed.granted);
          else if (job || failure.claimed) jobs.set(key, { job, facts, claimed: failure.claimed });
        }
        const readOn = streams.filter((s) => s.readOn.length > 0).map((s): [string, unknown[]] => [s.stream, s.readOn]);
        return { jobs, readOn, failed: false };
      },
      () => ({ jobs: new Map(), readOn: [], failed: true }),
    );
  }

  /** Whether `catchUp` can read: it needs the script to claim. */
  get canCatchUp(): boolean {
    return this.script.claiming;
  }

  /**
   * Reads up to `count` entries of each stream that nobody was handed yet, records and
   * claims their failures (no more claims than `room`) and acknowledges them, in Redis:
   * the failures that took a claim here (or were recorded first here) come back as
   * signals holding their claims. Rejects when Redis does: nothing was read then.
   */
  async catchUp(count: number, room: number): Promise<CatchUpRead> {
    const { streams, failures } = await this.script.catchUp(count, room);
    const read: CatchUpRead = { signals: [], entries: 0, full: false, malformed: [] };
    for (const { stream, entries, lastId, more } of streams) {
      read.entries += entries;
      if (more) read.full = true;
      if (lastId) this.lastRead.set(stream, lastId);
    }
    for (const failure of failures) {
      const { queueName, jobId, entryId, claimed } = failure;
      if (jobId === '') {
        read.malformed.push([this.keys.eventsStream(queueName), entryId]);
        continue;
      }
      const { job, facts } = this.unpack(failure);
      const signal: FailureSignal = { source: 'stream', queueName, jobId, reportedAt: idTime(entryId), facts, claimed };
      if (job) signal.job = job;
      read.signals.push(signal);
    }
    if (read.signals.length > 0) this.readsLeft = READS_AFTER_A_FAILURE;
    return read;
  }

  /** The job and the facts the script read with a failure. */
  private unpack({ queueName, jobId, hash, namedChild, children: listed, rootCause }: ReadFailure): { job?: Job; facts: StoredFacts } {
    // A job that does not decode is loaded (and isolated) by the classifier; its claims travel on.
    const job = hash.length > 0 ? this.decoded(queueName, jobId, hash) : undefined;
    const facts: StoredFacts = { namedChild, children: listed && this.children.decode(listed) };
    if (rootCause) facts.rootCause = this.cause(rootCause);
    return { job, facts };
  }

  private cause({ key, name, failedReason, stacktrace }: StoredRootCause): RootCause {
    const parsed = this.keys.parseJobKey(key);
    return { queueName: parsed?.queueName ?? '', jobId: parsed?.jobId ?? key, key, jobName: name, failedReason, stacktrace: parseStacktrace(stacktrace) };
  }

  private decoded(queueName: string, jobId: string, hash: unknown[]): Job | undefined {
    try {
      return this.jobs.fromScriptReply(queueName, jobId, hash);
    } catch {
      return undefined;
    }
  }

  /**
   * What a read handed this consumer (the entries, those the script read on included, and
   * the failure signals made of them): the next script starts after these entries, and
   * each signal gets its job, facts and claims where the script found them.
   */
  received(pairs: readonly [string, unknown[]][], signals: readonly FailureSignal[], jobs?: FoundJobs): void {
    this.readsLeft = signals.length > 0 ? READS_AFTER_A_FAILURE : this.readsLeft - 1;
    for (const [stream, entries] of pairs) {
      const last: unknown = entries.at(-1);
      if (!Array.isArray(last) || typeof last[0] !== 'string') continue;
      const before = this.lastRead.get(stream);
      if (!before || compareIds(last[0], before) > 0) this.lastRead.set(stream, last[0]);
    }
    if (!jobs) return;
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

/** BullMQ stores a stacktrace as a JSON list; anything else reads as none, as a loaded Job's does. */
function parseStacktrace(stored: string): string[] {
  try {
    const parsed: unknown = JSON.parse(stored);
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return [];
  }
}
