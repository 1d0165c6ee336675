import { FAILED_CHILDREN_SUFFIX, type RedisKeys } from '../redis/redis-keys.js';
import { type ReadClaims, grantedClaims } from './claim.types.js';
import type { LuaScripts, ScriptArg } from './lua-scripts.js';

/** One watched events stream, as read-and-claim.lua reads it. */
export interface ReadStream {
  stream: string;
  queueName: string;
  /** Whether a handler may want a failed job of this queue as a parent: then its children are read. */
  askChildren: boolean;
  /** Every handler that may want a failure of this queue, as a child or as a parent: all are claimed, and the dispatcher releases those that do not match. */
  handlers: readonly string[];
}

/** The root cause the script found: the job at the end of the chain of failed children. */
export interface StoredRootCause {
  key: string;
  name: string;
  failedReason: string;
  /** As BullMQ stores it: a JSON list of strings ('' when none). */
  stacktrace: string;
}

/** A failure the script read: the job's stored hash and the classifier's answers, with the claims it took. */
export interface ReadFailure {
  queueName: string;
  /** The stream entry that reported it. */
  entryId: string;
  /** '' when the entry has none (malformed). */
  jobId: string;
  /** HGETALL's flat list; empty when the job is gone. */
  hash: unknown[];
  /** The child its failedReason names (`child <key> failed`), and whether that child is among its failed children. */
  namedChild?: { key: string; failed: boolean };
  /** childrenOf's flat list (see children-of.lua); undefined when not asked. */
  children?: unknown[];
  /** Followed down from `namedChild` when it is a failed child. */
  rootCause?: StoredRootCause;
  claimed?: ReadClaims;
}

/** What one read did: entries read from each stream (in the order given), and the failures it answered. */
export interface FailureRead {
  /**
   * `more`: the stream may hold entries this read did not reach. `readOn` ('behind'): the
   * entries the script read on from a stream the blocking read did not return, as
   * XREADGROUP gives them; they belong to that read.
   */
  streams: { stream: string; queueName: string; entries: number; lastId?: string; more: boolean; readOn: unknown[] }[];
  failures: ReadFailure[];
}

/**
 * 'behind': this consumer's entries past the given ids, which a blocking read just handed
 * it; 'new': entries nobody was handed yet, each acknowledged by the script (a catch-up).
 */
export type ReadMode = 'behind' | 'new';

const VALUES_PER_STREAM = 4;
const VALUES_PER_FAILURE = 11;

/** The arguments and the reply of read-and-claim.lua, built and read in this one place. */
export class ReadAndClaim {
  private readonly streamKeys: string[];
  private readonly sharedArgs: ScriptArg[];
  /** ClaimStore.readClaimArgs when the read claims; undefined when it only reads. */
  private readonly claimArgs: (() => ScriptArg[]) | undefined;
  private readonly streamArgs: ScriptArg[][];

  constructor(
    /** Scripts of the blocking connection: the script must queue right behind the read. */
    private readonly scripts: LuaScripts,
    private readonly keys: RedisKeys,
    private readonly consumer: string,
    private readonly streams: readonly ReadStream[],
    claimArgs: (() => ScriptArg[]) | undefined,
    childrenPerGroup: number,
  ) {
    this.streamKeys = streams.map((s) => s.stream);
    this.sharedArgs = [FAILED_CHILDREN_SUFFIX, childrenPerGroup];
    this.claimArgs = claimArgs;
    this.claiming = claimArgs !== undefined;
    this.streamArgs = streams.map((s) => [s.queueName, keys.jobPrefix(s.queueName), s.askChildren ? '1' : '0', s.handlers.length, ...s.handlers]);
  }

  /** Whether the script claims: a catch-up's reads ('new') need it. */
  readonly claiming: boolean;

  /**
   * This consumer's entries of each stream past the id `after` gives it ('0': from the
   * start), up to `count` per stream, which a blocking read just handed it, and new
   * entries of the streams it did not return (`readOn`); no more than `room` claims (the
   * failures past them come back unclaimed).
   */
  behind(count: number, room: number, after: (stream: string) => string): Promise<FailureRead> {
    return this.run('behind', count, room, after);
  }

  /**
   * Entries nobody was handed yet, up to `count` per stream, and no more than `room`
   * claims; acknowledged by the script. Each call starts with the next stream.
   */
  catchUp(count: number, room: number): Promise<FailureRead> {
    this.nextFirst = (this.nextFirst % this.streams.length) + 1;
    return this.run('new', count, room, () => '>');
  }

  private nextFirst = 0;

  private async run(mode: ReadMode, count: number, room: number, after: (stream: string) => string): Promise<FailureRead> {
    const args: ScriptArg[] = [this.keys.group, this.consumer, count, mode, room, Math.max(1, this.nextFirst), ...this.sharedArgs];
    // Asked at each read: whether an expired lease may be taken changes with outages.
    args.push(...(this.claimArgs ? ['1', ...this.claimArgs()] : ['0']));
    this.streams.forEach((s, i) => args.push(after(s.stream), ...this.streamArgs[i]));
    return this.decode(JSON.parse(String(await this.scripts.run('readAndClaim', this.streamKeys, args))) as unknown[]);
  }

  private decode(reply: unknown[]): FailureRead {
    const streams = this.streams.map((s, i) => {
      const at = VALUES_PER_STREAM * i;
      const lastId = String(reply[at + 1]);
      const readOn = list(reply[at + 3]);
      return {
        stream: s.stream,
        queueName: s.queueName,
        entries: Number(reply[at]),
        lastId: lastId === '' ? undefined : lastId,
        more: Number(reply[at + 2]) === 1,
        readOn,
      };
    });
    const failures: ReadFailure[] = [];
    for (let i = VALUES_PER_STREAM * this.streams.length; i + VALUES_PER_FAILURE - 1 < reply.length; i += VALUES_PER_FAILURE) {
      const stream = this.streams[Number(reply[i]) - 1];
      if (!stream) continue;
      const named = String(reply[i + 4]);
      const children = list(reply[i + 6]);
      const cause = list(reply[i + 7]);
      const occurrenceId = String(reply[i + 8]);
      failures.push({
        queueName: stream.queueName,
        entryId: String(reply[i + 1]),
        jobId: String(reply[i + 2]),
        hash: list(reply[i + 3]),
        namedChild: named === '' ? undefined : { key: named, failed: Number(reply[i + 5]) === 1 },
        children: children.length > 0 ? children : undefined,
        rootCause: cause.length === 4 ? { key: String(cause[0]), name: String(cause[1]), failedReason: String(cause[2]), stacktrace: String(cause[3]) } : undefined,
        claimed:
          occurrenceId === ''
            ? undefined
            : { occurrenceId, granted: grantedClaims(list(reply[i + 9]), () => occurrenceId), firstRecorded: Number(reply[i + 10]) === 1 },
      });
    }
    return { streams, failures };
  }
}

/** A list of the script's reply: cjson encodes an empty Lua table as {}. */
function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
