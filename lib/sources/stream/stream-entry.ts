import type { FailureSignal } from '../../classifier/failure-signal.js';

export type ParsedStreamEntry =
  | { kind: 'failure'; signal: FailureSignal }
  | { kind: 'other' }
  | { kind: 'malformed'; problem: string };

/**
 * Where a BullMQ events-stream entry becomes a failure signal (or not). An entry is
 * `[id, fields]` as XREADGROUP / XAUTOCLAIM return it; fields are null when it was trimmed
 * while pending.
 */
export function parseStreamEntry(queueName: string, entry: unknown): ParsedStreamEntry {
  if (!Array.isArray(entry) || typeof entry[0] !== 'string') {
    return { kind: 'malformed', problem: 'not an [id, fields] pair' };
  }
  const fields: unknown = entry[1];
  if (fields === null) return { kind: 'other' };
  if (!Array.isArray(fields) || fields.length % 2 !== 0) {
    return { kind: 'malformed', problem: `entry ${entry[0]} has no field/value pairs` };
  }
  let event: unknown;
  let jobId: unknown;
  let failedReason: unknown;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'event') event = fields[i + 1];
    else if (fields[i] === 'jobId') jobId = fields[i + 1];
    else if (fields[i] === 'failedReason') failedReason = fields[i + 1];
  }
  if (event !== 'failed') return { kind: 'other' };
  if (typeof jobId !== 'string' || jobId === '') {
    return { kind: 'malformed', problem: `failed entry ${entry[0]} has no jobId` };
  }
  const signal: FailureSignal = { source: 'stream', queueName, jobId, reportedAt: idTime(entry[0]) };
  if (typeof failedReason === 'string') signal.failedReason = failedReason;
  return { kind: 'failure', signal };
}

/**
 * XREADGROUP's reply as [stream, entries] pairs. Over RESP2 it is a list of pairs; over
 * RESP3 (ioredis 6's default) it is a map, which ioredis flattens to [stream, entries, ...].
 */
export function streamReplyPairs(reply: unknown): [string, unknown[]][] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  if (typeof reply[0] === 'string') {
    const pairs: [string, unknown[]][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), reply[i + 1] as unknown[]]);
    return pairs;
  }
  return reply as [string, unknown[]][];
}

/** The time part (ms) of a stream entry id `<ms>-<seq>`. */
export function idTime(id: string): number {
  return Number(id.split('-')[0]);
}

/** Orders two stream entry ids. */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am !== bm ? am - bm : (as ?? 0) - (bs ?? 0);
}
