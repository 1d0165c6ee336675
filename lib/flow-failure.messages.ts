import { describeError } from './util/describe-error.js';

/**
 * Every line the module logs, in one place: operators search for these texts, so they
 * change here or not at all. Each says what happened, to what, and what follows.
 */
export const MESSAGES = {
  // Start-up and shutdown.
  watching: (queues: readonly string[], handlers: number, group: string, address: string) =>
    `Watching ${queues.length} queue(s) [${queues.join(', ')}] with ${handlers} handler(s), group "${group}", Redis ${address}`,
  copiesLoaded: (copies: number) =>
    `${copies} copies of nestjs-flow-failure are loaded (its ESM and CommonJS builds, or two installs): handlers are found whichever copy decorated them, ` +
    `but FlowFailureService and the module's other classes differ between copies, so inject them from the copy that imports FlowFailureModule; load the package one way`,
  mappedHandler: (kind: string, name: string) => `Mapped ${kind} handler ${name}`,
  reservationsNotReturned: (error: unknown) =>
    `Could not give back this instance's reservations (they expire after the lease): ${describeError(error)}`,
  claimsNotHandedBack: (count: number) => `Could not hand back ${count} claim(s) in time; they expire after the lease`,

  // Redis.
  connectionNotRecognised: (problem: string) =>
    `connection: ${problem}. Pass ioredis RedisOptions, an ioredis Redis, an ioredis Cluster, or cluster options with startupNodes`,
  clusterLayout: (address: string, prefix: string, ownTag: string | undefined, queues: readonly string[]) =>
    `Redis ${address}: ` +
    (ownTag === undefined
      ? `prefix "${prefix}" carries no hash tag, so each queue's keys and the module's own keys hash to different cluster slots` +
        (queues.length > 0 ? ` (hash tags in queue names, as ${queues.map((q) => `"${q}"`).join(', ')}, do not cover the module's keys)` : '')
      : `queue(s) ${queues.map((q) => `"${q}"`).join(', ')} hash to other cluster slots than prefix "${prefix}" (tag "{${ownTag}}")`) +
    `: the module's scripts and stream reads would fail with CROSSSLOT. ` +
    `Use one prefix with a hash tag, such as "{bull}", for every queue (BullModule.forRoot({ prefix: '{bull}' })), and no hash tags in queue names`,
  clusterNodeAsPlain: (address: string) =>
    `Redis ${address} is a node of a Redis Cluster, reached as a single server: commands for the other nodes' slots would fail with MOVED. ` +
    `Pass an ioredis Cluster (new Cluster([...nodes])) or cluster options with startupNodes as connection`,
  redisDown: (address: string, connection: string, error: string) => `Redis ${address} (${connection}): ${error}; reconnecting`,
  redisBack: (address: string, connection: string) => `Redis ${address} (${connection}) is back`,

  // Sources.
  workerPrefixMismatch: (queue: string, workerPrefix: string, prefix: string) =>
    `Worker of queue ${queue} uses prefix "${workerPrefix}", not "${prefix}": its failures are not watched`,
  workerDeliveryFailed: (queue: string, jobId: string, error: unknown) =>
    `Could not deliver the failure of ${queue}:${jobId} from its Worker (the stream or the sweep will): ${describeError(error)}`,
  reserveFailed: (queue: string, jobId: string, error: unknown) =>
    `Could not reserve the failure of ${queue}:${jobId} (it is claimed as it fails instead): ${describeError(error)}`,
  streamBatchFailed: (error: unknown) => `Delivering a batch of stream entries failed: ${describeError(error)}; reading it again`,
  streamDeleted: () => 'A watched events stream or its consumer group was deleted; recreating it',
  streamReadFailed: (error: unknown) => `Reading the events streams failed: ${describeError(error)}; retrying`,
  streamEntryMalformed: (stream: string, problem: string) => `Skipping a malformed entry of ${stream}: ${problem}`,
  streamAckFailed: (error: unknown) => `Acknowledging stream entries failed: ${describeError(error)}; they will be read again`,
  streamTakeoverFailed: (stream: string, error: unknown) => `Taking over idle entries of ${stream} failed: ${describeError(error)}`,
  streamHandBackFailed: (stream: string, error: unknown) => `Could not hand back the entries of ${stream}: ${describeError(error)}`,
  streamGap: (queue: string, gap: { from?: number; to: number; entries?: number }) =>
    `The events stream of ${queue} was trimmed past ${gap.entries ?? 'some'} entries the group had not read, written ` +
    (gap.from === undefined
      ? `before ${new Date(gap.to).toISOString()}`
      : `from ${new Date(gap.from).toISOString()} to ${new Date(gap.to).toISOString()} (${Math.round((gap.to - gap.from) / 1000)} s)`) +
    '. The sweep delivers the failures among them from the failed set now.',
  sweepFailed: (queue: string, error: unknown) =>
    `Sweeping the failed jobs of ${queue} failed: ${describeError(error)}; the next sweep tries again`,

  jobUnreadable: (queue: string, jobId: string, fields: readonly string[]) =>
    `The failed job ${queue}:${jobId} has stored fields that are not valid JSON (${fields.join(', ')}): ` +
    'its handlers get the event without `job`',
  jobUnclassifiable: (queue: string, jobId: string, error: unknown) =>
    `Could not classify the failure of ${queue}:${jobId}: ${describeError(error)}; it is not delivered, ` +
    'and is kept for an operator (FlowFailureService.getUnclassifiedFailures())',

  // Claims and runs.
  tookOver: (count: number) =>
    `Took over ${count} claim(s) whose holder stopped before finishing (an instance that crashed, stalled or closed); running them here`,
  takeoverFailed: (error: unknown) => `Taking over expired claims failed: ${describeError(error)}; retrying with a growing pause`,
  occurrenceUnrestorable: (occurrenceId: string, error: unknown) =>
    `Could not rebuild occurrence ${occurrenceId} to take its claims over: ${describeError(error)}; its claims are dropped`,
  reservedClaimsNotRecorded: (count: number, error: unknown) =>
    `Started ${count} handler(s) on this instance's reservations but could not record their claims: ${describeError(error)}; ` +
    'should the reservations lapse before Redis answers, another instance may run them again',
  reservedButTakenElsewhere: (handler: string, occurrenceId: string) =>
    `${handler} started for ${occurrenceId} on this instance's reservation, but another instance ` +
    'claimed it after the reservation lapsed (Redis answered too late): it may run twice',
  unwantedNotReleased: (error: unknown) =>
    `Could not give back the claims of handlers that do not match (their leases run out instead): ${describeError(error)}`,
  outcomeNotRecorded: (handler: string, occurrenceId: string, error: unknown) =>
    `Could not record the outcome of ${handler} for ${occurrenceId}: ${describeError(error)}`,
  retrying: (handler: string, occurrenceId: string, attempt: number, maxAttempt: number, error: unknown, delayMs: number) =>
    `${handler} threw for occurrence ${occurrenceId} (attempt ${attempt}/${maxAttempt}): ${describeError(error)}; trying again in ${delayMs} ms`,
  deadLetter: (handler: string, occurrenceId: string, attempts: number, id: string, lastError: string) =>
    `${handler} failed for occurrence ${occurrenceId} after ${attempts} attempts; kept as dead letter ${id}: ${lastError}`,
  handlerTimedOut: (timeoutMs: number) => `timed out after ${timeoutMs} ms (handlerTimeoutMs)`,
  retryNotResumed: (handler: string, occurrenceId: string, error: unknown) =>
    `Could not take back the retry of ${handler} for ${occurrenceId}: ${describeError(error)}; it is taken over once its lease ends`,
  holderStopped: () => 'the process running this handler stopped before it finished',
  settledCheckFailed: (count: number, error: unknown) =>
    `Could not tell whether ${count} failed parent(s) are settled: ${describeError(error)}; looking again in a second`,
  deadLetterWorkerFailed: (error: unknown) => `The dead-letter queue's Worker failed: ${describeError(error)}; it retries`,
  deadLetterCleanFailed: (error: unknown) => `Removing dead letters past their retention failed: ${describeError(error)}; the next round tries again`,
  replayStillRunning: (id: string, timeoutMs: number) => `the replay of ${id} did not finish within ${timeoutMs} ms; its outcome shows in the dead-letter queue`,
  renewFailed: (count: number, error: unknown) => `Could not renew ${count} claims: ${describeError(error)}`,
  claimLost: (handler: string, occurrenceId: string) =>
    `Lost the claim of ${handler} for ${occurrenceId} (lease expired); another instance owns it now`,

  // Errors thrown to the app.
  notInitialised: () => 'FlowFailureModule is not initialised yet: call app.init() first',
  notRunning: () => 'FlowFailureModule is not running: it starts in app.init() and stops in app.close()',
  stillBusy: (timeoutMs: number) => `FlowFailureModule still busy after ${timeoutMs} ms`,
  noDeadLetter: (id: string) => `no dead letter ${id}`,
  occurrenceGone: (id: string) => `the occurrence of dead letter ${id} is no longer stored`,
  handlerNotDeclared: (handlerKey: string) => `handler ${handlerKey} is not declared in this app, or no longer matches`,
  notReplayable: () => 'not a dead letter any more, or being run elsewhere',
} as const;
