import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ClaimStore } from '../claims/claim.store.js';
import { LeaseTrust } from '../claims/lease-trust.js';
import { LuaScripts } from '../claims/lua-scripts.js';
import { ReadAndClaim } from '../claims/read-and-claim.js';
import { BadJobs } from '../classifier/bad-jobs.js';
import { FailureClassifier } from '../classifier/failure.classifier.js';
import { CHILDREN_PER_GROUP, FlowChildrenReader } from '../classifier/flow-children.js';
import { JobLoader } from '../classifier/job-loader.js';
import { RecentFailures } from '../classifier/recent-failures.js';
import { DeadLetterQueue } from '../dead-letters/dead-letter-queue.js';
import { HandlerExplorer } from '../discovery/handler.explorer.js';
import { HandlerRegistry } from '../discovery/handler.registry.js';
import { ClaimTakeover } from '../dispatcher/claim-takeover.js';
import { FailureDispatcher } from '../dispatcher/failure.dispatcher.js';
import { OccurrenceRestorer } from '../dispatcher/occurrence-restorer.js';
import type { RunResult } from '../dispatcher/run.js';
import { WorkerReservations } from '../dispatcher/worker-reservations.js';
import { type BullSharedConfig, type FlowFailureConfig, resolveConfig } from '../flow-failure.config.js';
import { BULLMQ_DEFAULT_CONFIG_TOKEN, FLOW_FAILURE_MODULE_OPTIONS } from '../flow-failure.constants.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { FlowFailureModuleOptions } from '../interfaces/flow-failure-options.interface.js';
import type { FlowFailureStatus } from '../interfaces/flow-failure-status.interface.js';
import { RedisConnections } from '../redis/redis-connections.js';
import { RedisKeys, clusterSlotMismatch } from '../redis/redis-keys.js';
import { describeClusterTarget, isClusterTarget } from '../redis/redis-target.js';
import { FlowFailureConfigError } from '../errors/flow-failure-config.error.js';
import { FailureReads } from '../sources/stream/failure-reads.js';
import { StreamPositions } from '../sources/stream/stream-position.js';
import { StreamSource } from '../sources/stream/stream.source.js';
import { SweepSource } from '../sources/sweep.source.js';
import { WorkerSource } from '../sources/worker.source.js';
import { loadedCopies } from '../util/loaded-copies.js';
import { ShutdownBudget } from '../util/shutdown-budget.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { valueWithin, within } from '../util/within.js';
import { FailurePipeline } from './failure-pipeline.js';

/**
 * How long the stream reader pauses after a short read when Workers here report every
 * watched queue: what a failure their report missed waits at most this much longer.
 */
const STREAM_BACKUP_PAUSE_MS = 50;

/**
 * Runs an instance takes on per handler slot (`concurrency`): what it can start soon. The
 * sources wait beyond that, and leave the rest of a backlog to other replicas.
 */
const BACKLOG_PER_SLOT = 4;

/** What a replay may take beyond the handler's timeout: the dead-letter queue's hop to a Worker and back. */
const REPLAY_GRACE_MS = 5000;

/** What closing the connections may take when the shutdown budget is spent. */
const CLOSE_FLOOR_MS = 200;

/** Everything that exists between bootstrap and shutdown. */
interface Running {
  connections: RedisConnections;
  leaseTrust: LeaseTrust;
  loader: JobLoader;
  pipeline: FailurePipeline;
  reservations: WorkerReservations;
  dispatcher: FailureDispatcher;
  deadLetters: DeadLetterQueue;
  badJobs: BadJobs;
  positions: StreamPositions;
  takeover: ClaimTakeover;
  workers: WorkerSource;
  stream: StreamSource;
  sweep: SweepSource;
}

/**
 * Wires sources -> classifier -> dispatcher to the Nest lifecycle: handlers found in
 * onModuleInit, Redis and every source started in onApplicationBootstrap, sources stopped
 * and handlers drained before shutdown, connections closed at shutdown.
 */
@Injectable()
export class FlowFailureRuntime implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('FlowFailureModule');
  private configValue?: FlowFailureConfig;
  private running?: Running;
  private shutdown?: ShutdownBudget;
  /** Unique per process: names this app instance's claims and stream consumer. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

  constructor(
    @Inject(FLOW_FAILURE_MODULE_OPTIONS) private readonly options: FlowFailureModuleOptions,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
    @Inject(HandlerExplorer) private readonly explorer: HandlerExplorer,
    @Inject(HandlerRegistry) private readonly registry: HandlerRegistry,
  ) {}

  get config(): FlowFailureConfig {
    if (!this.configValue) throw new Error(MESSAGES.notInitialised());
    return this.configValue;
  }

  /** @throws Error before `app.init()` has finished, or after `app.close()` */
  get deadLetters(): DeadLetterQueue {
    return this.parts.deadLetters;
  }

  /** @throws Error before `app.init()` has finished, or after `app.close()` */
  get badJobs(): BadJobs {
    return this.parts.badJobs;
  }

  private get parts(): Running {
    if (!this.running) throw new Error(MESSAGES.notRunning());
    return this.running;
  }

  onModuleInit(): void {
    this.configValue = resolveConfig(this.options, this.bullConfig());
    this.explorer.explore(this.configValue.queues);
    this.checkClusterLayout(this.configValue);
    if (loadedCopies() > 1) this.logger.warn(MESSAGES.copiesLoaded(loadedCopies()));
  }

  async onApplicationBootstrap(): Promise<void> {
    const config = this.config;
    const [connections, telemetry] = await Promise.all([RedisConnections.open(config.connection), Telemetry.load()]);
    this.running = this.assemble(config, connections, telemetry);
    const { stream, workers, sweep, takeover, deadLetters, leaseTrust } = this.running;
    await leaseTrust.start();
    deadLetters.start();
    const queues = this.registry.watchedQueues;
    if (config.sources.includes('stream')) await stream.start();
    if (config.sources.includes('worker')) for (const worker of this.explorer.findWorkers()) workers.attach(worker);
    if (queues.length > 0 && queues.every((queue) => workers.covers(queue))) stream.serveAsBackup(STREAM_BACKUP_PAUSE_MS);
    // The stream reader needs the sweep even when it is not periodic: for the ranges BullMQ trimmed before it read them.
    if (config.sweepIntervalMs > 0 || config.sources.includes('stream')) await sweep.start();
    takeover.start();
    this.logger.log(MESSAGES.watching(queues, this.registry.all.length, config.consumerGroup, connections.address));
  }

  async beforeApplicationShutdown(): Promise<void> {
    const running = this.running;
    if (!running) return;
    // One budget for every step: with Redis gone, close() still returns in time (what is left
    // unacknowledged or unreleased is recovered by the other replicas, or after a restart).
    const budget = (this.shutdown = new ShutdownBudget(this.config.shutdownTimeoutMs));
    running.workers.detachAll();
    // What the Workers still run fails unwatched here: other replicas claim it at once.
    await within(budget.left(), running.reservations.release().catch((error: unknown) => this.logger.warn(MESSAGES.reservationsNotReturned(error))));
    await within(budget.left(), Promise.all([running.stream.stop(), running.sweep.stop(), running.takeover.stop(), running.leaseTrust.stop()]));
    await within(budget.left(), running.pipeline.drained());
    await running.dispatcher.stop(budget);
    await within(budget.left(), running.deadLetters.close());
  }

  async onApplicationShutdown(): Promise<void> {
    const running = this.running;
    if (!running) return;
    this.running = undefined;
    running.pipeline.close();
    const left = () => this.shutdown?.left(CLOSE_FLOOR_MS) ?? CLOSE_FLOOR_MS;
    await within(left(), running.loader.close());
    await running.connections.close(left());
  }

  /** What a health check reports: Redis, each watched stream's lag, dead letters, backlog (each Redis call bounded by `timeoutMs`). */
  async status(timeoutMs: number): Promise<FlowFailureStatus> {
    const { connections, positions, deadLetters, dispatcher } = this.parts;
    const bounded = <T>(work: Promise<T>) => valueWithin(timeoutMs, work);
    const up = (await bounded(connections.commands.ping())) === 'PONG';
    const streams = await Promise.all(
      this.registry.watchedQueues.map(async (queueName) => ({ queueName, lag: up ? await bounded(positions.lag(queueName)) : undefined })),
    );
    return { redis: { up, address: connections.address }, streams, deadLetters: up ? await bounded(deadLetters.count()) : undefined, backlog: dispatcher.backlog };
  }

  /** No delivery in flight or sweep under way, no handler queued, running or backing off, and the stream reader caught up. */
  async isIdle(): Promise<boolean> {
    const { pipeline, dispatcher, stream, sweep } = this.parts;
    const quiet = () => pipeline.idle && dispatcher.idle && sweep.idle;
    // Asked again after the stream check: a delivery may have begun while it was awaited.
    return quiet() && (await stream.caughtUp()) && quiet();
  }

  /** Builds every part on the open connections: the wiring of the pipeline, and nothing else. */
  private assemble(config: FlowFailureConfig, connections: RedisConnections, telemetry: Telemetry): Running {
    const { commands, jobs, blocking } = connections;
    const queues = this.registry.watchedQueues;
    const keys = new RedisKeys(config.prefix, config.consumerGroup, queues);
    const scripts = new LuaScripts(commands);
    const loader = new JobLoader(jobs, keys);
    const recent = new RecentFailures();
    const parentInterest = (queueName: string, jobName: string | undefined, causedByChild: boolean) =>
      this.registry.couldMatch({ kind: 'parent-failed', queueName, jobName, causedByChild });
    const badJobs = new BadJobs(commands, keys);
    const children = new FlowChildrenReader(new LuaScripts(jobs), keys);
    const classifier = new FailureClassifier(jobs, loader, children, keys, recent, parentInterest, badJobs);
    const leaseTrust = new LeaseTrust(scripts, keys.leases, () => connections.msSinceRecovered(), config.leaseMs);
    const claims = new ClaimStore(commands, scripts, keys, this.owner, config.leaseMs, config.dedupTtlMs, config.deadLetterTtlMs, () =>
      leaseTrust.takeExpiredOn(),
    );
    const deadLetters: DeadLetterQueue = new DeadLetterQueue(
      jobs,
      keys,
      claims,
      async (letter): Promise<RunResult> => {
        const occurrence = await restorer.restore(letter.occurrenceId);
        return occurrence ? dispatcher.replay(occurrence, letter.handlerKey) : { ok: false, error: MESSAGES.occurrenceGone(letter.id) };
      },
      { retentionMs: config.deadLetterTtlMs, replayTimeoutMs: config.handlerTimeoutMs + REPLAY_GRACE_MS },
    );
    const reservations = new WorkerReservations(claims, this.registry, keys, config.leaseMs, config.workerReservations);
    const dispatcher: FailureDispatcher = new FailureDispatcher(
      claims,
      this.registry,
      {
        handlerAttempts: config.handlerAttempts,
        handlerBackoffMs: config.handlerBackoffMs,
        handlerTimeoutMs: config.handlerTimeoutMs,
        concurrency: config.concurrency,
        backlogLimit: config.concurrency * BACKLOG_PER_SLOT,
        leaseMs: config.leaseMs,
        markerTtlMs: Math.max(10 * 60 * 1000, 4 * config.sweepIntervalMs),
        settledTimeoutMs: config.settledTimeoutMs,
      },
      reservations,
      children,
      keys,
      deadLetters,
      telemetry,
    );
    const capacity = {
      room: () => dispatcher.room,
      whenRoom: () => dispatcher.whenRoom(),
      hold: (count: number) => dispatcher.holdRoom(count),
    };
    const restorer = new OccurrenceRestorer(claims, loader, classifier);
    const pipeline = new FailurePipeline(classifier, dispatcher, recent, keys);
    const deliver = (signals: Parameters<FailurePipeline['deliver']>[0]) => pipeline.deliver(signals);
    connections.onRecovered(() => {
      void dispatcher.renewLeases();
      leaseTrust.recovered();
    });
    const positions = new StreamPositions(commands, keys, (queue, endMs) => {
      telemetry.gapFound(queue);
      sweep.sweepGap(queue, endMs);
    });
    telemetry.observe({
      backlog: () => dispatcher.backlog,
      deadLettersByHandler: () => deadLetters.countByHandler(),
      handlers: () => this.registry.all.map((binding) => binding.name),
      streamLag: async () => {
        const lags = new Map<string, number>();
        for (const queue of queues) {
          const lag = await positions.lag(queue);
          if (lag !== undefined) lags.set(queue, lag);
        }
        return lags;
      },
    });
    const readAndClaim = new ReadAndClaim(
      new LuaScripts(blocking),
      keys,
      this.owner,
      queues.map((queueName) => ({
        stream: keys.eventsStream(queueName),
        queueName,
        askChildren: parentInterest(queueName, undefined, true) || parentInterest(queueName, undefined, false),
        handlers: this.registry.handlersOf(queueName),
      })),
      () => claims.readClaimArgs(),
      CHILDREN_PER_GROUP,
    );
    const sweep = new SweepSource(commands, scripts, keys, positions, deliver, (ids) => claims.recorded(ids), capacity, {
      queues,
      intervalMs: config.sweepIntervalMs,
      owner: this.owner,
    });
    return {
      connections,
      leaseTrust,
      loader,
      pipeline,
      reservations,
      dispatcher,
      deadLetters,
      badJobs,
      positions,
      takeover: new ClaimTakeover(
        claims,
        dispatcher,
        (id) => restorer.restore(id),
        // Often, so claims handed back by a closing instance are taken at once; it is one cheap script.
        Math.min(1000, Math.floor(config.leaseMs / 2)),
        () => leaseTrust.holdersCatchingUp(),
        () => dispatcher.room,
      ),
      workers: new WorkerSource(config.prefix, deliver, {
        jobStarted: (queueName, job) => {
          reservations.jobStarted(queueName, job);
          classifier.parentStarting(queueName, job);
        },
        hasRoom: () => dispatcher.room > 0,
        passOn: (queueName, job) => {
          reservations.giveBack({ queueName, jobId: job.id as string, attemptsStarted: job.attemptsStarted });
          classifier.dropReadAhead(queueName, job);
        },
      }),
      stream: new StreamSource(
        commands,
        blocking,
        keys,
        positions,
        deliver,
        capacity,
        new FailureReads(readAndClaim, keys, loader, children),
        {
          queues,
          consumer: this.owner,
          leaseMs: config.leaseMs,
          catchUpClaims: Math.max(1, Math.floor((config.concurrency * BACKLOG_PER_SLOT) / 2)),
          onBehind: () => sweep.readerBehind(),
          onCaughtUp: () => sweep.readerCaughtUp(),
        },
      ),
      sweep,
    };
  }

  /** @throws FlowFailureConfigError when the watched queues and the module's keys cannot share one cluster slot */
  private checkClusterLayout({ connection, prefix, consumerGroup }: FlowFailureConfig): void {
    if (!isClusterTarget(connection)) return;
    const queues = this.registry.watchedQueues;
    const mismatch = clusterSlotMismatch(new RedisKeys(prefix, consumerGroup, queues), queues);
    if (mismatch) {
      throw new FlowFailureConfigError(
        `FlowFailureModule.forRoot(): ${MESSAGES.clusterLayout(describeClusterTarget(connection), prefix, mismatch.ownTag, mismatch.queues)}`,
      );
    }
  }

  private bullConfig(): BullSharedConfig | undefined {
    try {
      return this.moduleRef.get<BullSharedConfig>(BULLMQ_DEFAULT_CONFIG_TOKEN, { strict: false });
    } catch {
      return undefined;
    }
  }
}
