import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { describeValue } from '../util/describe-value.js';

/** ioredis options for a Redis Cluster: its startup nodes beside ioredis's ClusterOptions. */
export interface ClusterConnectionOptions extends ClusterOptions {
  startupNodes: ClusterNode[];
}

/**
 * What a `connection` value is, told apart once at start-up. An ioredis client is known by
 * its shape (`duplicate()` and `isCluster`), not by `instanceof`: a bullmq that brings its
 * own copy of ioredis hands out clients of another class.
 */
export type RedisTarget =
  | { kind: 'options'; options: RedisOptions & { url?: string } }
  | { kind: 'client'; client: Redis }
  | { kind: 'cluster-options'; nodes: ClusterNode[]; options: ClusterOptions }
  | { kind: 'cluster-client'; client: Cluster };

/** Whether the target is a Redis Cluster, whose key layout init() checks. */
export function isClusterTarget(target: RedisTarget): target is Extract<RedisTarget, { kind: 'cluster-options' | 'cluster-client' }> {
  return target.kind === 'cluster-options' || target.kind === 'cluster-client';
}

interface ClientShape {
  duplicate: unknown;
  isCluster: unknown;
  options?: unknown;
}

function isClientShaped(value: object): value is ClientShape {
  return typeof (value as ClientShape).duplicate === 'function' && typeof (value as ClientShape).isCluster === 'boolean';
}

/**
 * The target a connection value names, or a sentence saying why it names none: an ioredis
 * Redis or Cluster, cluster options (`startupNodes`), or plain Redis options (an object of
 * ioredis's RedisOptions, with `url` as BullMQ allows).
 */
export function redisTargetOf(value: unknown): RedisTarget | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `it is neither an ioredis Redis or Cluster nor an object of connection options, got ${describeValue(value)}`;
  }
  if (isClientShaped(value)) {
    return value.isCluster ? { kind: 'cluster-client', client: value as unknown as Cluster } : { kind: 'client', client: value as unknown as Redis };
  }
  if (typeof (value as { connect?: unknown }).connect === 'function' || typeof (value as { sendCommand?: unknown }).sendCommand === 'function') {
    return 'it is a client object but not one of ioredis (a Redis or Cluster with duplicate())';
  }
  if ('startupNodes' in value) {
    const { startupNodes, ...options } = value as ClusterConnectionOptions;
    if (!Array.isArray(startupNodes) || startupNodes.length === 0 || !startupNodes.every(isClusterNode)) {
      return 'startupNodes must be a non-empty array of cluster nodes ({ host, port }, "host:port" or a port)';
    }
    return { kind: 'cluster-options', nodes: startupNodes, options };
  }
  if ('url' in value && typeof value.url !== 'string') return 'url must be a string such as "redis://host:6379"';
  return { kind: 'options', options: value };
}

function isClusterNode(node: unknown): node is ClusterNode {
  return typeof node === 'string' || typeof node === 'number' || (typeof node === 'object' && node !== null && !Array.isArray(node));
}

/** `host:port` of a cluster node as ioredis accepts it. */
export function describeClusterNode(node: ClusterNode): string {
  if (typeof node === 'number') return `127.0.0.1:${node}`;
  if (typeof node === 'string') return node.replace(/^rediss?:\/\//, '');
  return `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`;
}

/** `cluster <node>,<node>,…`: the nodes a cluster was given, as logs and errors name it. */
export function describeCluster(nodes: readonly ClusterNode[]): string {
  const shown = nodes.slice(0, 5).map(describeClusterNode).join(',');
  return `cluster ${shown}${nodes.length > 5 ? `,… (${nodes.length} nodes)` : ''}`;
}

/** How logs and errors name a cluster target: `cluster <node>,<node>,…`. */
export function describeClusterTarget(target: Extract<RedisTarget, { kind: 'cluster-options' | 'cluster-client' }>): string {
  return describeCluster(target.kind === 'cluster-client' ? startupNodesOf(target.client) : target.nodes);
}

/** The startup nodes of an ioredis Cluster (kept by ioredis, not in its typed API). */
export function startupNodesOf(cluster: Cluster): ClusterNode[] {
  return (cluster as unknown as { startupNodes?: ClusterNode[] }).startupNodes ?? [];
}
