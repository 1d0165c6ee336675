import type { Cluster, Redis } from 'ioredis';
import type { RedisKeys } from '../redis/redis-keys.js';
import type { DeadLetter } from './dead-letter.js';

/** Reads dead letters. Writing them is the claim store's `settle`, reviving them its `claim`, discarding them its `discard`. */
export class DeadLetterStore {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keys: RedisKeys,
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
}
