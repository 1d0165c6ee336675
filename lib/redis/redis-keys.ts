/** A job key taken apart. */
export interface ParsedJobKey {
  prefix: string;
  queueName: string;
  jobId: string;
  /** The whole key: `${prefix}:${queueName}:${jobId}`. */
  key: string;
}

/** One attempt of a job: a Worker's reservation is for the attempt it started. */
export interface JobAttempt {
  queueName: string;
  jobId: string;
  /** BullMQ's `attemptsStarted` (`ats`): counts every start, so each names one attempt. */
  attemptsStarted: number;
}

/** The suffix of the ZSET under a parent's key of the children whose failure counted against it. */
export const FAILED_CHILDREN_SUFFIX = ':unsuccessful';

const DEFERRED_FAILURE = /^child (.+) failed$/;

/**
 * Every Redis key the module reads or writes, built in this one place. BullMQ's keys
 * (jobs, events streams, failed sets) are read only. The module's own keys live under the
 * queues' prefix, so a prefix with a hash tag (`{bull}`) keeps them in the queues' Redis
 * Cluster slot, after an empty segment (`<prefix>::flow-failure:<group>:`): every BullMQ
 * key is `<prefix>:<queue>:…` with a queue name that is never empty, so no queue's keys,
 * whatever its name and job ids, can be the module's.
 */
export class RedisKeys {
  private readonly base: string;

  constructor(
    readonly prefix: string,
    readonly group: string,
    /** The watched queues: they tell where a job key under another prefix splits. */
    private readonly queues: readonly string[] = [],
  ) {
    this.base = `${prefix}::flow-failure:${group}`;
  }

  // BullMQ's keys.

  job(queueName: string, jobId: string): string {
    return jobKey(this.prefix, queueName, jobId);
  }

  /** What every job key of a queue begins with. */
  jobPrefix(queueName: string): string {
    return this.job(queueName, '');
  }

  eventsStream(queueName: string): string {
    return `${this.prefix}:${queueName}:events`;
  }

  failedSet(queueName: string): string {
    return `${this.prefix}:${queueName}:failed`;
  }

  failedChildren(parentKey: string): string {
    return `${parentKey}${FAILED_CHILDREN_SUFFIX}`;
  }

  /**
   * Takes a job key apart. Queue names cannot contain ':', but prefixes and job ids can
   * (`order:42:main`, `imp::42`), so the key is split where a known prefix or a watched
   * queue says: under this prefix, after the queue name; under another, around a watched
   * queue's name; failing both, on the last two colons (a job id without ':').
   */
  parseJobKey(key: string): ParsedJobKey | undefined {
    const own = `${this.prefix}:`;
    const underOwn = key.startsWith(own) ? splitQueueAndId(this.prefix, key.slice(own.length), key) : undefined;
    if (underOwn && this.queues.includes(underOwn.queueName)) return underOwn;
    for (const queueName of this.queues) {
      const at = key.indexOf(`:${queueName}:`);
      const jobId = at > 0 ? key.slice(at + queueName.length + 2) : '';
      if (jobId !== '') return { prefix: key.slice(0, at), queueName, jobId, key };
    }
    return underOwn ?? parseJobKey(key);
  }

  /** The parent of a child job: exact from `job.parent` (its queue key and id), else from `job.parentKey`. */
  parentOf(job: { parent?: { id?: string; queueKey: string }; parentKey?: string }): ParsedJobKey | undefined {
    const { parent } = job;
    const colon = parent?.queueKey.lastIndexOf(':') ?? -1;
    if (parent?.id && colon > 0) {
      const prefix = parent.queueKey.slice(0, colon);
      const queueName = parent.queueKey.slice(colon + 1);
      return { prefix, queueName, jobId: parent.id, key: jobKey(prefix, queueName, parent.id) };
    }
    return job.parentKey ? this.parseJobKey(job.parentKey) : undefined;
  }

  /** The child key inside BullMQ's deferred failure text `child <key> failed`. */
  parseDeferredFailure(text: string | undefined): ParsedJobKey | undefined {
    const match = text ? DEFERRED_FAILURE.exec(text) : null;
    return match ? this.parseJobKey(match[1]) : undefined;
  }

  // The module's keys.

  /** HASH: the occurrence's `snapshot` and one state field per handler (`h:<handler>`). */
  occurrence(occurrenceId: string): string {
    return `${this.occurrencePrefix}${occurrenceId}`;
  }

  /** What every occurrence key begins with, for the scripts that build one. */
  get occurrencePrefix(): string {
    return `${this.base}:occ:`;
  }

  /**
   * STRING with a TTL: the owner of the Worker that started this attempt of a flow job,
   * which runs the handlers of its failure as it sees it; every other claim is taken in
   * its name while this lives (reserve-2.lua).
   */
  reservation({ queueName, jobId, attemptsStarted }: JobAttempt): string {
    return `${this.reservationPrefix}${queueName}:${jobId}:${attemptsStarted}`;
  }

  /** What every reservation key begins with, for the scripts that build one. */
  get reservationPrefix(): string {
    return `${this.base}:res:`;
  }

  /** ZSET: claim member -> lease deadline (ms). Expired members are taken over by any replica. */
  get leases(): string {
    return `${this.base}:leases`;
  }

  /**
   * The module's BullMQ queue of dead letters (its keys are `<prefix>:<name>:…`): each is a
   * failed job that dashboards such as bull-board list, retry and remove.
   */
  get deadLetterQueue(): string {
    return deadLetterQueueName(this.group);
  }

  /** LIST: failures that could not be classified, newest first (capped), for operators. */
  get unclassified(): string {
    return `${this.base}:unclassified`;
  }

  /** STRING: the `finishedOn` up to which the queue's failed set has been swept. */
  sweepCheckpoint(queueName: string): string {
    return `${this.base}:sweep:${queueName}`;
  }

  /** STRING with a TTL: one replica sweeps a queue at a time. */
  sweepLock(queueName: string): string {
    return `${this.base}:sweep-lock:${queueName}`;
  }
}

/** The name of a consumer group's dead-letter queue: register it with bull-board under this name. */
export function deadLetterQueueName(consumerGroup = 'flow-failure'): string {
  return `${consumerGroup}.dead-letters`;
}

/** A job's key under any prefix (a flow's parent may live under another). */
export function jobKey(prefix: string, queueName: string, jobId: string): string {
  return `${prefix}:${queueName}:${jobId}`;
}

/** `<queue>:<jobId>` after a known prefix: the queue name ends at the first ':'. */
function splitQueueAndId(prefix: string, rest: string, key: string): ParsedJobKey | undefined {
  const colon = rest.indexOf(':');
  if (colon <= 0 || colon === rest.length - 1) return undefined;
  return { prefix, queueName: rest.slice(0, colon), jobId: rest.slice(colon + 1), key };
}

/** A job key under an unknown prefix, whose job id has no ':': it splits on its last two colons. */
function parseJobKey(key: string): ParsedJobKey | undefined {
  const last = key.lastIndexOf(':');
  const middle = last > 0 ? key.lastIndexOf(':', last - 1) : -1;
  if (middle <= 0 || last === key.length - 1 || last - middle < 2) {
    return undefined;
  }
  return {
    prefix: key.slice(0, middle),
    queueName: key.slice(middle + 1, last),
    jobId: key.slice(last + 1),
    key,
  };
}

/** The hash tag Redis Cluster slots a key by: the text between its first '{' and the next '}', when not empty. */
export function hashTagOf(key: string): string | undefined {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}

/**
 * On a Redis Cluster, the module's scripts take BullMQ's keys of every watched queue together
 * with its own keys, and one blocking read takes every events stream: all must hash to one
 * slot. What does not, as `{ queues }` whose keys carry another tag than the module's own,
 * or undefined when the layout works (a prefix carrying a hash tag, such as `{bull}`).
 */
export function clusterSlotMismatch(keys: RedisKeys, queues: readonly string[]): { ownTag?: string; queues: string[] } | undefined {
  const ownTag = hashTagOf(keys.leases);
  const elsewhere = queues.filter((queue) =>
    [keys.job(queue, 'id'), keys.eventsStream(queue), keys.failedSet(queue)].some((key) => hashTagOf(key) !== ownTag),
  );
  return ownTag === undefined || elsewhere.length > 0 ? { ownTag, queues: elsewhere } : undefined;
}
