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

/** A failure the script read: the job's stored hash and the classifier's answers, with the claims it took. */
export interface ReadFailure {
  queueName: string;
  jobId: string;
  /** HGETALL's flat list; empty when the job is gone. */
  hash: unknown[];
  /** The child its failedReason names (`child <key> failed`), and whether that child is among its failed children. */
  namedChild?: { key: string; failed: boolean };
  /** childrenOf's flat list (see children-of.lua); undefined when not asked. */
  children?: unknown[];
  claimed?: ReadClaims;
}

/** The arguments and the reply of read-and-claim.lua, built and read in this one place. */
export class ReadAndClaim {
  private readonly streamKeys: string[];
  private readonly sharedArgs: ScriptArg[];
  private readonly streamArgs: ScriptArg[][];

  constructor(
    /** Scripts of the blocking connection: the script must queue right behind the read. */
    private readonly scripts: LuaScripts,
    private readonly keys: RedisKeys,
    private readonly consumer: string,
    private readonly streams: readonly ReadStream[],
    /** ClaimStore.readClaimArgs when the read claims; undefined when it only reads. */
    claimArgs: readonly ScriptArg[] | undefined,
    childrenPerGroup: number,
  ) {
    this.streamKeys = streams.map((s) => s.stream);
    this.sharedArgs = [FAILED_CHILDREN_SUFFIX, childrenPerGroup];
    this.sharedArgs.push(...(claimArgs ? ['1', ...claimArgs] : ['0']));
    this.streamArgs = streams.map((s) => [s.queueName, keys.jobPrefix(s.queueName), s.askChildren ? '1' : '0', s.handlers.length, ...s.handlers]);
  }

  /** Reads up to `count` entries of each stream after the id `after` gives it ('0': from the start). */
  async run(count: number, after: (stream: string) => string): Promise<ReadFailure[]> {
    const args: ScriptArg[] = [this.keys.group, this.consumer, count, ...this.sharedArgs];
    this.streams.forEach((s, i) => args.push(after(s.stream), ...this.streamArgs[i]));
    return this.decode((await this.scripts.run('readAndClaim', this.streamKeys, args)) as unknown[]);
  }

  private decode(reply: unknown[]): ReadFailure[] {
    const failures: ReadFailure[] = [];
    for (let i = 0; i + 8 < reply.length; i += 9) {
      const stream = this.streams[Number(reply[i]) - 1];
      if (!stream) continue;
      const named = String(reply[i + 3]);
      const children = reply[i + 5] as unknown[];
      const occurrenceId = String(reply[i + 6]);
      failures.push({
        queueName: stream.queueName,
        jobId: String(reply[i + 1]),
        hash: reply[i + 2] as unknown[],
        namedChild: named === '' ? undefined : { key: named, failed: Number(reply[i + 4]) === 1 },
        children: children.length > 0 ? children : undefined,
        claimed:
          occurrenceId === ''
            ? undefined
            : { occurrenceId, granted: grantedClaims(reply[i + 7] as unknown[], () => occurrenceId), firstRecorded: Number(reply[i + 8]) === 1 },
      });
    }
    return failures;
  }
}
