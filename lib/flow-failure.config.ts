import { DEFAULTS } from './flow-failure.constants.js';
import { FlowFailureConfigError } from './errors/flow-failure-config.error.js';
import type { FlowFailureConnection, FlowFailureModuleOptions, LiveSource } from './interfaces/flow-failure-options.interface.js';
import { MESSAGES } from './flow-failure.messages.js';
import { type RedisTarget, redisTargetOf } from './redis/redis-target.js';
import { describeValue } from './util/describe-value.js';

/** The options with every default filled in. */
export interface FlowFailureConfig {
  /** The connection, told apart: plain Redis options or client, or a Cluster's. */
  connection: RedisTarget;
  prefix: string;
  queues: string[];
  consumerGroup: string;
  handlerAttempts: number;
  handlerBackoffMs: number;
  handlerTimeoutMs: number;
  dedupTtlMs: number;
  leaseMs: number;
  sources: LiveSource[];
  workerReservations: boolean;
  sweepIntervalMs: number;
  concurrency: number;
  shutdownTimeoutMs: number;
  settledTimeoutMs: number;
  deadLetterTtlMs: number;
}

/** What `BullModule.forRoot()` was given, when the app has it. */
export interface BullSharedConfig {
  connection?: FlowFailureConnection;
  prefix?: string;
}

const KNOWN_OPTIONS: readonly (keyof FlowFailureModuleOptions)[] = [
  'connection',
  'prefix',
  'queues',
  'consumerGroup',
  'handlerAttempts',
  'handlerBackoffMs',
  'handlerTimeoutMs',
  'dedupTtlMs',
  'leaseMs',
  'sources',
  'workerReservations',
  'sweepIntervalMs',
  'concurrency',
  'shutdownTimeoutMs',
  'settledTimeoutMs',
  'deadLetterTtlMs',
];

/** @throws FlowFailureConfigError naming the option that is wrong */
export function resolveConfig(options: FlowFailureModuleOptions = {}, bull?: BullSharedConfig): FlowFailureConfig {
  const fail = (problem: string): never => {
    throw new FlowFailureConfigError(`FlowFailureModule.forRoot(): ${problem}`);
  };
  if (typeof options !== 'object' || options === null) fail('options must be an object');
  const unknown = Object.keys(options).filter((key) => !(KNOWN_OPTIONS as readonly string[]).includes(key));
  if (unknown.length > 0) fail(`unknown option ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${KNOWN_OPTIONS.join(', ')})`);

  const text = (name: string, value: unknown, fallback: string): string => {
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || value.trim() === '') fail(`${name} must be a non-empty string`);
    return value as string;
  };
  const flag = (name: string, value: unknown, fallback: boolean): boolean => {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') fail(`${name} must be true or false, got ${describeValue(value)}`);
    return value as boolean;
  };
  const number = (name: keyof FlowFailureModuleOptions, min: number): number => {
    const value = options[name] ?? DEFAULTS[name as keyof typeof DEFAULTS];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      fail(`${name} must be a whole number of at least ${min}, got ${describeValue(value)}`);
    }
    return value as number;
  };
  const queues = options.queues ?? [];
  if (!Array.isArray(queues)) fail('queues must be an array of queue names');
  for (const queue of queues) {
    if (typeof queue !== 'string' || queue.trim() === '' || queue.includes(':')) {
      fail(`queues: ${JSON.stringify(queue)} is not a queue name (a non-empty string without ':')`);
    }
  }
  const sources = options.sources ?? ['worker', 'stream'];
  if (!Array.isArray(sources) || sources.some((source) => source !== 'worker' && source !== 'stream')) {
    fail(`sources must be an array of 'worker' and 'stream', got ${JSON.stringify(sources)}`);
  }
  const sweepIntervalMs = number('sweepIntervalMs', 0);
  // The Worker source cannot make a Worker wait: what it reports while the handlers have no
  // room is left to the stream, and without it only the sweep delivers it.
  if (sweepIntervalMs === 0 && sources.includes('worker') && !sources.includes('stream')) {
    fail(`sources ['worker'] needs the sweep (sweepIntervalMs 0 turns it off): it delivers the failures a Worker reports while the handlers have no room`);
  }
  const group = text('consumerGroup', options.consumerGroup, DEFAULTS.consumerGroup);
  if (/[|:]/.test(group)) fail(`consumerGroup must not contain '|' or ':' (it is part of the module's Redis keys)`);

  const leaseMs = number('leaseMs', 1000);
  const dedupTtlMs = number('dedupTtlMs', 1000);
  // A done mark that expires while a claim may still be taken over would let a handler run again.
  if (dedupTtlMs < 2 * leaseMs) fail(`dedupTtlMs (${dedupTtlMs}) must be at least twice leaseMs (${leaseMs})`);

  // Only when neither this module nor BullModule names one: a value given and not understood fails, never falls back.
  const target = redisTargetOf(options.connection ?? bull?.connection ?? { host: DEFAULTS.host, port: DEFAULTS.port });
  if (typeof target === 'string') fail(MESSAGES.connectionNotRecognised(options.connection === undefined ? `(from BullModule.forRoot()) ${target}` : target));

  return {
    connection: target as RedisTarget,
    prefix: text('prefix', options.prefix, bull?.prefix ?? DEFAULTS.prefix),
    queues: [...new Set(queues)],
    consumerGroup: group,
    handlerAttempts: number('handlerAttempts', 1),
    handlerBackoffMs: number('handlerBackoffMs', 0),
    handlerTimeoutMs: number('handlerTimeoutMs', 1),
    dedupTtlMs,
    leaseMs,
    sources: [...new Set(sources)],
    workerReservations: flag('workerReservations', options.workerReservations, true),
    sweepIntervalMs,
    concurrency: number('concurrency', 1),
    shutdownTimeoutMs: number('shutdownTimeoutMs', 0),
    settledTimeoutMs: number('settledTimeoutMs', 1),
    deadLetterTtlMs: number('deadLetterTtlMs', 1000),
  };
}
