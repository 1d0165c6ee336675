/** A Redis Cluster this process started: its masters' addresses, and how to stop them all. */
export interface OwnRedisCluster {
  nodes: { host: string; port: number }[];
  stop(): Promise<unknown>;
}
export declare function startRedisCluster(options?: { masters?: number; server?: string; cli?: string }): Promise<OwnRedisCluster>;
