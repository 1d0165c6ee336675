import type { Redis } from 'ioredis';
import type { ModuleKeys } from '../redis/module-keys.js';
import { parseClaimMember } from '../redis/module-keys.js';
import type { DeadLetter } from './dead-letter.js';

/** Reads and forgets dead letters. Writing them is the claim store's `settle`, and reviving them its `claim`. */
export class DeadLetterStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: ModuleKeys,
    private readonly dedupTtlMs: number,
  ) {}

  async list(): Promise<DeadLetter[]> {
    const raw = await this.redis.hgetall(this.keys.deadLetters);
    return Object.values(raw)
      .map((json) => JSON.parse(json) as DeadLetter)
      .sort((a, b) => a.failedAt - b.failedAt);
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    const json = await this.redis.hget(this.keys.deadLetters, id);
    return json ? (JSON.parse(json) as DeadLetter) : undefined;
  }

  /** The occurrence stays marked dead (never run again) and is forgotten after the dedup TTL. */
  async discard(id: string): Promise<boolean> {
    const claim = parseClaimMember(id);
    if (!claim) return false;
    const [[, removed]] = (await this.redis
      .multi()
      .hdel(this.keys.deadLetters, id)
      .pexpire(this.keys.occurrence(claim.occurrenceId), this.dedupTtlMs)
      .exec()) as [[Error | null, number], [Error | null, number]];
    return removed === 1;
  }
}
