import { MAX_RECONNECT_DELAY_MS } from '../redis/redis-connections.js';
import type { LuaScripts } from './lua-scripts.js';

/**
 * Whether an expired lease can be taken to mean that its holder is gone. Not right after
 * an outage: leases ran out while nobody could renew them, and live holders renew only as
 * their connections come back, each after its own reconnection delay. Nor in an instance's
 * first moments: Redis may have just finished loading its data, and the holders may not be
 * back yet. So expired leases are trusted only once this instance's connections have all
 * been up for a window (`leaseMs`, and at least twice the longest reconnection delay) since
 * it started or last recovered, and since the Redis server it knows last changed.
 *
 * The claim rule judges expired leases in Redis, by the server's run id given here
 * (`takeExpiredOn`): a call decided before a restart and resent after it takes none.
 */
export class LeaseTrust {
  private readonly windowMs: number;
  private runId = '';
  /** performance.now() when `runId` was learned: it is trusted a window later. */
  private trustedFrom = Infinity;
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly scripts: LuaScripts,
    private readonly leasesKey: string,
    /** RedisConnections.msSinceRecovered. */
    private readonly msSinceRecovered: () => number,
    leaseMs: number,
  ) {
    this.windowMs = Math.max(leaseMs, 2 * MAX_RECONNECT_DELAY_MS);
  }

  /**
   * Learns the server's run id, then asks again after each recovery and every few seconds:
   * a Cluster's failover changes it without a reconnection here.
   */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => this.recovered(), Math.max(250, Math.floor(this.windowMs / 4)));
  }

  /** A connection came back: the server may be another one now. */
  recovered(): void {
    if (this.stopped) return;
    this.refreshing ??= this.refresh()
      .catch(() => undefined) // down again: the next recovery asks
      .finally(() => (this.refreshing = undefined));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.refreshing;
  }

  /** The run id of the server on which expired leases may be taken now; '' while holders may be catching up. */
  takeExpiredOn(): string {
    const trusted = this.msSinceRecovered() >= this.windowMs && performance.now() - this.trustedFrom >= this.windowMs;
    return trusted ? this.runId : '';
  }

  holdersCatchingUp(): boolean {
    return this.takeExpiredOn() === '';
  }

  private async refresh(): Promise<void> {
    const runId = String(await this.scripts.run('runId', [this.leasesKey], []));
    if (runId === this.runId) return;
    this.runId = runId;
    this.trustedFrom = performance.now();
  }
}
