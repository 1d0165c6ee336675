import { Redis } from 'ioredis';
import { FailureClassifier } from '../../lib/classifier/failure.classifier.js';
import type { FailureOccurrence } from '../../lib/classifier/failure-occurrence.js';
import { JobLoader } from '../../lib/classifier/job-loader.js';
import { ClaimStore } from '../../lib/dispatcher/claim.store.js';
import { FailureDispatcher } from '../../lib/dispatcher/failure.dispatcher.js';
import { StreamSource } from '../../lib/sources/stream.source.js';
import type { FailureSignal } from '../../lib/sources/failure-signal.js';
import type { TraceReport } from '../shared/protocol.js';
import { distribution } from '../shared/stats.js';
import { preciseNow } from './clock.js';

/**
 * Profiling aid (BENCH_TRACE=1): wraps the module's classes to time each stage of the path
 * from a job's `finishedOn` to its handler, per source, and counts the Redis commands its
 * connections send. The library is not changed; the wrappers add a little overhead, so traced
 * runs are for finding where the time goes, not for the headline numbers.
 *
 * Stages, per occurrence (ms):
 *   <source>:signal    finishedOn -> the classifier gets the signal (Worker event / stream read)
 *   <source>:classify  classify() of the batch the signal came in (job loads, EXISTS, root cause)
 *   <source>:claim     classify() resolved -> its claim script answered (waits for the whole batch's classification;
 *                      0 when the stream's read took the claims, or a Worker's reservation let the handlers start first)
 *   <source>:queue     claim answered -> the handler's first line (the dispatcher's queue)
 *   <source>:total     finishedOn -> the handler's first line
 * per call: load (Job.fromId), claim (one claim script, for one occurrence or a batch),
 * hadChildren (EXISTS), rootCause; and per batch: batch:classify, batch:dispatch (claims),
 * batch:stream-entries (entries in one XREADGROUP reply), stream:xadd-to-read (how old a
 * failure entry is when its reply is read).
 */
export interface Tracer {
  handlerStarted(occurrenceId: string, source: string): void;
  report(): TraceReport;
  /** Forgets the timings and counts so far (not the occurrences in flight). */
  reset(): void;
  /** Adds one duration (ms) to a stage of the caller's choosing. */
  note(stage: string, ms: number): void;
}

type AnyMethod = (this: unknown, ...args: unknown[]) => unknown;

interface Timeline {
  finishedOn: number;
  classifyStart: number;
  classifyEnd: number;
}

let active: Tracer | undefined;

/** The tracer installed in this process, if any: handlers tell it when they start. */
export function currentTracer(): Tracer | undefined {
  return active;
}

export function installTracer(): Tracer {
  const stages = new Map<string, number[]>();
  const commands = new Map<string, number>();
  const timelines = new Map<string, Timeline>();
  const add = (stage: string, ms: number) => {
    let values = stages.get(stage);
    if (!values) stages.set(stage, (values = []));
    values.push(ms);
  };

  const claimedAt = new Map<string, number>();
  const remember = <V>(map: Map<string, V>, key: string, value: V) => {
    map.set(key, value);
    // Occurrences another source claimed first never reach a handler here: keep the maps bounded.
    while (map.size > 50_000) map.delete(map.keys().next().value as string);
  };

  timeCalls(JobLoader.prototype, 'load', (ms) => add('call:load', ms));
  timeCalls(FailureClassifier.prototype, 'hadChildren', (ms) => add('call:hadChildren', ms));
  timeCalls(FailureClassifier.prototype, 'rootCause', (ms) => add('call:rootCause', ms));
  timeCalls(FailureDispatcher.prototype, 'dispatch', (ms) => add('batch:dispatch', ms));
  wrap(StreamSource.prototype, 'parse', (original) =>
    function (this: unknown, ...args: unknown[]) {
      const start = preciseNow();
      // How old each failure entry is when its reply is read (entry ids carry Redis's ms clock).
      let entries = 0;
      for (const [, batch] of args[0] as [string, unknown[]][]) {
        for (const entry of batch) {
          entries++;
          const [id, fields] = entry as [string, string[] | null];
          if (fields?.[1] === 'failed') add('stream:xadd-to-read', start - Number(id.split('-')[0]));
        }
      }
      add('batch:stream-entries', entries);
      return original.apply(this, args);
    },
  );
  wrap(ClaimStore.prototype, 'claim', (original) =>
    async function (this: unknown, ...args: unknown[]) {
      const start = preciseNow();
      const granted = await original.apply(this, args);
      const end = preciseNow();
      add('call:claim', end - start);
      // The handler of a granted claim starts in the same chain of microtasks, right after this.
      for (const request of args[0] as { occurrenceId: string }[]) remember(claimedAt, request.occurrenceId, end);
      return granted;
    },
  );
  wrap(FailureClassifier.prototype, 'classify', (original) =>
    async function (this: unknown, ...args: unknown[]) {
      const classifyStart = preciseNow();
      const signals = args[0] as FailureSignal[];
      const occurrences = (await original.apply(this, args)) as FailureOccurrence[];
      const classifyEnd = preciseNow();
      add(`${signals[0]?.source ?? '?'}:signals-per-classify`, signals.length);
      add('batch:classify', classifyEnd - classifyStart);
      for (const occurrence of occurrences) {
        const finishedOn = occurrence.job?.finishedOn;
        if (finishedOn) remember(timelines, `${occurrence.id}|${occurrence.source}`, { finishedOn, classifyStart, classifyEnd });
      }
      return occurrences;
    },
  );
  countCommands(commands);

  const tracer: Tracer = {
    handlerStarted(occurrenceId, source) {
      const now = preciseNow();
      const key = `${occurrenceId}|${source}`;
      const timeline = timelines.get(key);
      if (!timeline) return;
      // Claims the stream's read took arrive with the job, and a reserved failure's handlers
      // start before their claim: nothing is waited for after classifying.
      const claimEnd = claimedAt.get(occurrenceId) ?? timeline.classifyEnd;
      timelines.delete(key);
      claimedAt.delete(occurrenceId);
      add(`${source}:signal`, timeline.classifyStart - timeline.finishedOn);
      add(`${source}:classify`, timeline.classifyEnd - timeline.classifyStart);
      add(`${source}:claim`, claimEnd - timeline.classifyEnd);
      add(`${source}:queue`, now - claimEnd);
      add(`${source}:total`, now - timeline.finishedOn);
    },
    reset() {
      stages.clear();
      commands.clear();
    },
    note: add,
    report() {
      return {
        stages: Object.fromEntries([...stages].map(([stage, values]) => [stage, distribution(values)])),
        commands: Object.fromEntries([...commands].sort((a, b) => b[1] - a[1])),
      };
    },
  };
  active = tracer;
  return tracer;
}

/**
 * Replaces a method (often a private one) with a timed version. The library changes: a method
 * that is gone is skipped with a warning, and its stage stays empty, rather than failing the run.
 */
function wrap(target: object, name: string, make: (original: AnyMethod) => AnyMethod): void {
  const methods = target as Record<string, AnyMethod>;
  const original = methods[name];
  if (typeof original !== 'function') {
    console.warn(`BENCH_TRACE: ${target.constructor.name}.${name} not found (the library changed?); not traced`);
    return;
  }
  methods[name] = make(original);
}

function timeCalls(target: object, name: string, record: (ms: number) => void): void {
  wrap(target, name, (original) =>
    async function (this: unknown, ...args: unknown[]) {
      const start = preciseNow();
      try {
        return await original.apply(this, args);
      } finally {
        record(preciseNow() - start);
      }
    },
  );
}

/** Counts every command the process's ioredis clients send (pipelined ones included), by connection name. */
function countCommands(commands: Map<string, number>): void {
  wrap(Redis.prototype, 'sendCommand', (original) =>
    function (this: unknown, ...args: unknown[]) {
      const client = this as Redis;
      const command = args[0] as { name: string };
      const key = `${client.options.connectionName || 'other'} ${command.name}`;
      commands.set(key, (commands.get(key) ?? 0) + 1);
      return original.apply(this, args);
    },
  );
}
