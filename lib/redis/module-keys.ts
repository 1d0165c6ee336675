/**
 * Every Redis key this module writes. They live under the queues' prefix, so a prefix
 * with a hash tag (`{bull}`) keeps them in the queues' Redis Cluster slot.
 */
export class ModuleKeys {
  private readonly base: string;

  constructor(
    readonly prefix: string,
    readonly group: string,
  ) {
    this.base = `${prefix}:flow-failure:${group}`;
  }

  /** HASH: the occurrence's snapshot (`e`) and one state field per handler (`h:<handler>`). */
  occurrence(occurrenceId: string): string {
    return `${this.base}:occ:${occurrenceId}`;
  }

  /**
   * STRING with a TTL: the owner of the Worker that started this attempt of a flow job
   * (`attemptsStarted`), which runs the handlers of its failure as it sees it; every other
   * claim is taken in its name while this lives (see RESERVE).
   */
  reservation(queueName: string, jobId: string, attemptsStarted: number): string {
    return `${this.reservationPrefix}${queueName}:${jobId}:${attemptsStarted}`;
  }

  /** What a reservation key begins with, for the scripts that build one. */
  get reservationPrefix(): string {
    return `${this.base}:res:`;
  }

  /** ZSET: claim member -> lease deadline (ms). Expired members are taken over by any replica. */
  get leases(): string {
    return `${this.base}:leases`;
  }

  /** HASH: claim member -> dead letter record (JSON). */
  get deadLetters(): string {
    return `${this.base}:dead`;
  }

  /** STRING: the `finishedOn` up to which the queue's failed set has been swept. */
  sweepCheckpoint(queueName: string): string {
    return `${this.base}:sweep:${queueName}`;
  }

  /** STRING with a TTL: one replica sweeps a queue at a time. */
  sweepLock(queueName: string): string {
    return `${this.base}:sweep-lock:${queueName}`;
  }

  /** BullMQ's keys, read only. */
  eventsStream(queueName: string): string {
    return `${this.prefix}:${queueName}:events`;
  }

  failedSet(queueName: string): string {
    return `${this.prefix}:${queueName}:failed`;
  }
}

/** A claim is one (handler, occurrence) pair; the handler key never contains '|'. */
export function claimMember(handlerKey: string, occurrenceId: string): string {
  return `${handlerKey}|${occurrenceId}`;
}

export function parseClaimMember(member: string): { handlerKey: string; occurrenceId: string } | undefined {
  const bar = member.indexOf('|');
  return bar > 0 ? { handlerKey: member.slice(0, bar), occurrenceId: member.slice(bar + 1) } : undefined;
}
