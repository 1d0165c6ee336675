import diagnosticsChannel from 'node:diagnostics_channel';
import { Redis } from 'ioredis';
import { DIAGNOSTICS_CHANNELS, type ClaimTrace, type ClassifyTrace, type StreamReadMessage } from 'nestjs-flow-failure';
import type { TraceReport } from '../shared/protocol.js';
import { distribution } from '../shared/stats.js';
import { preciseNow } from './clock.js';

/**
 * Profiling aid (BENCH_TRACE=1): subscribes to the module's diagnostics channels to time
 * each stage of the path from a job's `finishedOn` to its handler, per source, and counts
 * the Redis commands its connections send. Subscribing costs a little: traced runs are for
 * finding where the time goes, not for the headline numbers.
 *
 * Stages, per occurrence (ms):
 *   <source>:signal    finishedOn -> the classifier gets the signal (Worker event / stream read)
 *   <source>:classify  classify() of the batch the signal came in (job loads, root cause)
 *   <source>:claim     classify() resolved -> its claim script answered (waits for the whole batch's classification;
 *                      0 when the stream's read took the claims, or a Worker's reservation let the handlers start first)
 *   <source>:queue     claim answered -> the handler's first line (the dispatcher's queue)
 *   <source>:total     finishedOn -> the handler's first line
 * per call: load (one job load), claim (one claim script, for one occurrence or a batch);
 * per batch: batch:classify, batch:dispatch (claims), batch:stream-entries (entries in one
 * stream read), stream:xadd-to-read (how old a failure entry is when its read returns).
 */
export interface Tracer {
  handlerStarted(occurrenceId: string, source: string): void;
  report(): TraceReport;
  /** Forgets the timings and counts so far (not the occurrences in flight). */
  reset(): void;
  /** Adds one duration (ms) to a stage of the caller's choosing. */
  note(stage: string, ms: number): void;
}

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

  const timed = <C extends object>(name: string, onEnd: (context: C, ms: number) => void) => {
    const started = new WeakMap<object, number>();
    diagnosticsChannel.tracingChannel<unknown, C>(name).subscribe({
      start: (context) => started.set(context, preciseNow()),
      asyncEnd: (context) => onEnd(context, preciseNow() - (started.get(context) ?? preciseNow())),
      end: () => undefined,
      asyncStart: () => undefined,
      error: () => undefined,
    });
  };
  timed(DIAGNOSTICS_CHANNELS.loadJob, (_context, ms) => add('call:load', ms));
  timed(DIAGNOSTICS_CHANNELS.dispatch, (_context, ms) => add('batch:dispatch', ms));
  timed<ClaimTrace>(DIAGNOSTICS_CHANNELS.claim, (context, ms) => {
    const end = preciseNow();
    add('call:claim', ms);
    // The handler of a granted claim starts in the same chain of microtasks, right after this.
    for (const id of context.occurrenceIds) remember(claimedAt, id, end);
  });
  timed<ClassifyTrace>(DIAGNOSTICS_CHANNELS.classify, (context, ms) => {
    const classifyEnd = preciseNow();
    const classifyStart = classifyEnd - ms;
    add(`${context.signals[0]?.source ?? '?'}:signals-per-classify`, context.signals.length);
    add('batch:classify', ms);
    for (const occurrence of context.result ?? []) {
      if (occurrence.finishedOn) remember(timelines, `${occurrence.id}|${occurrence.source}`, { finishedOn: occurrence.finishedOn, classifyStart, classifyEnd });
    }
  });
  diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.streamRead, (message) => {
    const read = preciseNow();
    let entries = 0;
    for (const [, batch] of (message as StreamReadMessage).pairs) {
      for (const entry of batch) {
        entries++;
        // How old each failure entry is when its read returns (entry ids carry Redis's ms clock).
        const [id, fields] = entry as [string, string[] | null];
        if (fields?.[1] === 'failed') add('stream:xadd-to-read', read - Number(id.split('-')[0]));
      }
    }
    add('batch:stream-entries', entries);
  });
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

/** Counts every command the process's ioredis clients send (pipelined ones included), by connection name. */
function countCommands(commands: Map<string, number>): void {
  const prototype = Redis.prototype as unknown as { sendCommand: (this: Redis, ...args: unknown[]) => unknown };
  const original = prototype.sendCommand;
  prototype.sendCommand = function (this: Redis, ...args: unknown[]) {
    const command = args[0] as { name: string };
    const key = `${this.options.connectionName || 'other'} ${command.name}`;
    commands.set(key, (commands.get(key) ?? 0) + 1);
    return original.apply(this, args);
  };
}
