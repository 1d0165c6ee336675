import type { Cluster, Redis } from 'ioredis';

/**
 * Whether an expired lease can be taken to mean that its holder is gone. Not right after
 * an outage: leases ran out while nobody could renew them, and live holders renew only as
 * their connections come back. That is true for `leaseMs` after this instance's own
 * connection came back, and while Redis itself started less than `leaseMs` ago (an
 * instance started after Redis restarted saw no outage of its own, but the holders did).
 */
export class LeaseTrust {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly recentlyRecovered: (windowMs: number) => boolean,
    private readonly leaseMs: number,
  ) {}

  async holdersCatchingUp(): Promise<boolean> {
    if (this.recentlyRecovered(this.leaseMs)) return true;
    const uptime = /uptime_in_seconds:(\d+)/.exec(await this.redis.info('server'))?.[1];
    // Whole seconds: one more covers the part of a second it rounds away.
    return uptime !== undefined && (Number(uptime) - 1) * 1000 < this.leaseMs;
  }
}
