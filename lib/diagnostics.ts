import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * Node's diagnostics channels that the module publishes to: a supported hook for profilers
 * and the benchmark, with the names and context shapes below kept stable. With no
 * subscriber, publishing costs a property check.
 *
 * Tracing channels (start / end / asyncStart / asyncEnd / error, see Node's
 * `diagnostics_channel.tracingChannel`):
 * - `nestjs-flow-failure:classify`: a batch of signals becomes occurrences.
 * - `nestjs-flow-failure:dispatch`: occurrences get their claims and their runs are queued.
 * - `nestjs-flow-failure:claim`: one claim script call.
 * - `nestjs-flow-failure:load-job`: one job load.
 * Channel `nestjs-flow-failure:stream-read`: the entries one stream read returned.
 * Channel `nestjs-flow-failure:reservation`: a Worker's reservation taken, and what the
 * failure it reserved did with it.
 */
export const DIAGNOSTICS_CHANNELS = {
  classify: 'nestjs-flow-failure:classify',
  dispatch: 'nestjs-flow-failure:dispatch',
  claim: 'nestjs-flow-failure:claim',
  loadJob: 'nestjs-flow-failure:load-job',
  streamRead: 'nestjs-flow-failure:stream-read',
  reservation: 'nestjs-flow-failure:reservation',
} as const;

/** A failure as the traces describe it. */
export interface TracedOccurrence {
  id: string;
  source: string;
  finishedOn: number;
}

/** Context of `classify`: the signals in; `result`, once resolved, the occurrences out. */
export interface ClassifyTrace {
  signals: readonly { source: string; queueName: string; jobId: string }[];
  result?: readonly TracedOccurrence[];
}

/** Context of `dispatch` and `claim`: the occurrences whose claims are taken. */
export interface ClaimTrace {
  occurrenceIds: readonly string[];
}

/** Context of `load-job`. */
export interface LoadJobTrace {
  queueName: string;
  jobId: string;
}

/** Message of `stream-read`: the raw entries of one read, `[stream, [[id, fields], ...]]` pairs. */
export interface StreamReadMessage {
  pairs: readonly [string, unknown[]][];
}

/**
 * Message of `reservation`: the instance (`owner`, as its claims name it) reserved this
 * attempt (`use` undefined), or its Worker reported the attempt's failure, which used the
 * reservation this way: 'run-now' (handlers started before the claim), 'claim-first' (too
 * late for that), 'none'.
 */
export interface ReservationMessage {
  owner: string;
  attempt: { queueName: string; jobId: string; attemptsStarted: number };
  use?: 'run-now' | 'claim-first' | 'none';
}

export const tracing = {
  classify: diagnosticsChannel.tracingChannel<unknown, ClassifyTrace & object>(DIAGNOSTICS_CHANNELS.classify),
  dispatch: diagnosticsChannel.tracingChannel<unknown, ClaimTrace & object>(DIAGNOSTICS_CHANNELS.dispatch),
  claim: diagnosticsChannel.tracingChannel<unknown, ClaimTrace & object>(DIAGNOSTICS_CHANNELS.claim),
  loadJob: diagnosticsChannel.tracingChannel<unknown, LoadJobTrace & object>(DIAGNOSTICS_CHANNELS.loadJob),
  streamRead: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.streamRead),
  reservation: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.reservation),
};

/** Runs `work` traced on `channel` when someone listens, else just runs it. */
export function traced<T, C extends object>(
  channel: diagnosticsChannel.TracingChannel<unknown, C>,
  context: () => C,
  work: () => Promise<T>,
): Promise<T> {
  if (!channel.hasSubscribers) return work();
  return channel.tracePromise(work, context());
}
