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
import type { Job } from 'bullmq';
import { FailureClassifier } from '../classifier/failure.classifier.js';
import { type FailureOccurrence, fromSnapshot, parseOccurrenceId } from '../classifier/failure-occurrence.js';
import { JobLoader } from '../classifier/job-loader.js';
import { RecentFailures } from '../classifier/recent-failures.js';
import { ClaimReaper } from '../dispatcher/claim.reaper.js';
import { ClaimStore } from '../dispatcher/claim.store.js';
import { DeadLetterStore } from '../dispatcher/dead-letter.store.js';
import { FailureDispatcher } from '../dispatcher/failure.dispatcher.js';
import { WorkerReservations } from '../dispatcher/worker-reservations.js';
import { HandlerExplorer } from '../discovery/handler.explorer.js';
import { HandlerRegistry } from '../discovery/handler.registry.js';
import { type BullSharedConfig, type FlowFailureConfig, resolveConfig } from '../flow-failure.config.js';
import { BULLMQ_DEFAULT_CONFIG_TOKEN, FLOW_FAILURE_MODULE_OPTIONS } from '../flow-failure.constants.js';
import type { FlowFailureModuleOptions } from '../interfaces/flow-failure-options.interface.js';
import { jobKey, parseJobKey } from '../redis/job-key.js';
import { ModuleKeys } from '../redis/module-keys.js';
import { RedisConnections } from '../redis/redis-connections.js';
import type { FailureSignal } from '../sources/failure-signal.js';
import { StreamPositions } from '../sources/stream-position.js';
import { StreamSource } from '../sources/stream.source.js';
import { SweepSource } from '../sources/sweep.source.js';
import { WorkerSource } from '../sources/worker.source.js';
import { within } from '../util/within.js';

/**
 * How long the stream reader pauses after a short read when Workers here report every
 * watched queue: what a failure their report missed waits at most this much longer.
 */
const STREAM_BACKUP_PAUSE_MS = 50;

/** Everything that exists between bootstrap and shutdown. */
interface Running {
  connections: RedisConnections;
  recent: RecentFailures;
  loader: JobLoader;
  claims: ClaimStore;
  reservations: WorkerReservations;
  dispatcher: FailureDispatcher;
  deadLetters: DeadLetterStore;
  reaper: ClaimReaper;
  workers: WorkerSource;
  stream: StreamSource;
  sweep: SweepSource;
  classifier: FailureClassifier;
}

/**
 * Wires sources -> classifier -> dispatcher and runs them for the app's lifetime:
 * handlers found in onModuleInit, Redis and every source started in
 * onApplicationBootstrap, sources stopped and handlers drained before shutdown.
 */
@Injectable()
export class FlowFailureRuntime implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly inFlight = new Set<Promise<void>>();
  private configValue?: FlowFailureConfig;
  private running?: Running;
  /** Unique per process: names this app instance's claims and stream consumer. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

  constructor(
    @Inject(FLOW_FAILURE_MODULE_OPTIONS) private readonly options: FlowFailureModuleOptions,
    private readonly moduleRef: ModuleRef,
    private readonly explorer: HandlerExplorer,
    private readonly registry: HandlerRegistry,
  ) {}

  get config(): FlowFailureConfig {
    if (!this.configValue) throw new Error('FlowFailureModule is not initialised yet: call app.init() first');
    return this.configValue;
  }

  /** @throws Error before `app.init()` has finished, or after `app.close()` */
  get parts(): Running {
    if (!this.running) throw new Error('FlowFailureModule is not running: it starts in app.init() and stops in app.close()');
    return this.running;
  }

  onModuleInit(): void {
    this.configValue = resolveConfig(this.options, this.bullConfig());
    this.explorer.explore(this.configValue.queues);
  }

  async onApplicationBootstrap(): Promise<void> {
    const config = this.config;
    const queues = this.registry.watchedQueues;
    const connections = await RedisConnections.open(config.connection);
    const redis = connections.commands;
    const keys = new ModuleKeys(config.prefix, config.consumerGroup);
    const loader = new JobLoader(connections.jobs);
    const recent = new RecentFailures();
    const parentInterest = (queueName: string, jobName?: string) =>
      this.registry.couldMatch({ kind: 'parent-failed', queueName, jobName, causedByChild: false });
    const classifier = new FailureClassifier(connections.jobs, loader, config.prefix, recent, parentInterest);
    const claims = new ClaimStore(redis, keys, this.owner, config.leaseMs, config.dedupTtlMs);
    const reservations = new WorkerReservations(claims, config.leaseMs);
    const dispatcher = new FailureDispatcher(
      claims,
      this.registry,
      {
        handlerAttempts: config.handlerAttempts,
        handlerBackoffMs: config.handlerBackoffMs,
        concurrency: config.concurrency,
        leaseMs: config.leaseMs,
        markerTtlMs: Math.max(10 * 60 * 1000, 4 * config.sweepIntervalMs),
      },
      reservations,
    );
    const deliver = (signals: FailureSignal[]) => this.deliver(signals);
    const holdersCatchingUp = () => connections.recentlyRecovered(config.leaseMs);
    connections.onRecovered(() => void dispatcher.renew());
    const positions = new StreamPositions(redis, keys);
    this.running = {
      connections,
      recent,
      loader,
      claims,
      reservations,
      dispatcher,
      classifier,
      deadLetters: new DeadLetterStore(redis, keys),
      reaper: new ClaimReaper(
        claims,
        dispatcher,
        (id) => this.restore(id),
        // Often, so claims handed back by a closing instance are taken at once; it is one cheap script.
        Math.min(1000, Math.floor(config.leaseMs / 2)),
        holdersCatchingUp,
      ),
      workers: new WorkerSource(config.prefix, deliver, (queueName, job) => {
        if (config.workerReservations && job.id && job.attemptsStarted > 0 && this.failureWanted(queueName, job)) {
          reservations.reserve({ queueName, jobId: job.id, attemptsStarted: job.attemptsStarted });
        }
      }),
      stream: new StreamSource(redis, connections.blocking, keys, positions, deliver, (limit) => dispatcher.whenBacklogBelow(limit), loader, {
        queues,
        consumer: this.owner,
        leaseMs: config.leaseMs,
        maxBacklog: config.concurrency * 20,
        parentInterest,
        holdersCatchingUp,
        claimRules: { args: claims.claimArgs(), candidates: (queueName) => this.registry.handlersOf(queueName) },
      }),
      sweep: new SweepSource(redis, keys, positions, deliver, (ids) => claims.recorded(ids), {
        queues,
        intervalMs: config.sweepIntervalMs,
        owner: this.owner,
      }),
    };
    const { stream, workers, sweep, reaper } = this.running;
    if (config.sources.includes('stream')) await stream.start();
    if (config.sources.includes('worker')) for (const worker of this.explorer.findWorkers()) workers.attach(worker);
    if (queues.length > 0 && queues.every((queue) => workers.covers(queue))) stream.serveAsBackup(STREAM_BACKUP_PAUSE_MS);
    if (config.sweepIntervalMs > 0) await sweep.start();
    reaper.start();
    this.logger.log(
      `Watching ${queues.length} queue(s) [${queues.join(', ')}] with ${this.registry.all.length} handler(s), ` +
        `group "${config.consumerGroup}", Redis ${connections.address}`,
    );
  }

  async beforeApplicationShutdown(): Promise<void> {
    const running = this.running;
    if (!running) return;
    const timeout = this.config.shutdownTimeoutMs;
    running.workers.detachAll();
    // What the Workers still run fails unwatched here: other replicas claim it at once.
    await within(
      timeout,
      running.reservations.release().catch((error: unknown) => this.logger.warn(`Could not give back this instance's reservations (they expire after the lease): ${String(error)}`)),
    );
    // Each step is bounded: with Redis gone, close() still returns (what is left unacknowledged is recovered later).
    await within(timeout, Promise.all([running.stream.stop(), running.sweep.stop(), running.reaper.stop()]));
    await within(timeout, Promise.allSettled([...this.inFlight]));
    await running.dispatcher.stop(timeout);
  }

  async onApplicationShutdown(): Promise<void> {
    const running = this.running;
    if (!running) return;
    this.running = undefined;
    await running.loader.close();
    await running.connections.close();
  }

  /** An occurrence as recorded, with its job as it is now: for crash recovery and replays. */
  async restore(occurrenceId: string): Promise<FailureOccurrence | undefined> {
    const { claims, loader, classifier } = this.parts;
    const snapshot = await claims.snapshot(occurrenceId);
    if (snapshot) return fromSnapshot(occurrenceId, snapshot, (queueName, jobId) => loader.load(this.config.prefix, queueName, jobId));
    // Claimed by a stream read whose process stopped before it stored the snapshot: the job
    // tells again what it was (as long as it is still there, failed at that time).
    const ref = parseOccurrenceId(occurrenceId);
    if (!ref || !(await claims.recorded([occurrenceId]))[0]) return undefined;
    const signal: FailureSignal = { source: 'stream', queueName: ref.queueName, jobId: ref.jobId, claimed: { occurrenceId, granted: [] } };
    const [occurrence] = await classifier.classify([signal]);
    return occurrence?.id === occurrenceId ? occurrence : undefined;
  }

  /** No delivery in flight, no handler queued, running or backing off, and the stream reader caught up. */
  async isIdle(): Promise<boolean> {
    const running = this.parts;
    const quiet = () => this.inFlight.size === 0 && running.dispatcher.idle;
    // Asked again after the stream check: a delivery may have begun while it was awaited.
    return quiet() && (await running.stream.caughtUp()) && quiet();
  }

  /** sources -> classifier -> dispatcher. Resolves once the occurrences are recorded (handlers run on). */
  private deliver(signals: FailureSignal[]): Promise<void> {
    if (!this.running) return Promise.resolve(); // closed: the stream or the sweep delivers it after restart
    const { classifier, dispatcher, recent } = this.running;
    // A read that took none of the occurrence's claims found it recorded elsewhere, and every
    // handler that could want it held there, done or dead: nothing is left to do here.
    const toClassify = signals.filter((signal) => !signal.claimed || signal.claimed.granted.length > 0);
    const claimedWithRead = toClassify.flatMap((signal) => signal.claimed ?? []);
    // The occurrences recorded in Redis (none when stopped before recording them).
    const recorded = classifier
      .classify(toClassify)
      .then(async (occurrences) => ((await dispatcher.dispatch(occurrences, claimedWithRead)) ? occurrences : []));
    // A Worker's report: the stream's entry for the same failure arrives about now, and waits
    // for this instead of classifying and claiming it again.
    for (const { source, queueName, jobId, job } of signals) {
      const finishedOn = job?.finishedOn;
      if (source !== 'worker' || !finishedOn) continue;
      const isRecorded = recorded.then((occurrences) =>
        occurrences.some((o) => o.queueName === queueName && o.jobId === jobId && o.finishedOn === finishedOn),
      );
      recent.reporting(jobKey(this.config.prefix, queueName, jobId), finishedOn, isRecorded);
    }
    const delivery = recorded.then(() => undefined);
    this.inFlight.add(delivery);
    return delivery.finally(() => this.inFlight.delete(delivery));
  }

  /**
   * Whether a handler may want the failure of a job a Worker starts, as far as the job tells
   * without asking Redis: a child, or a parent failing on a child's failure (BullMQ's deferred
   * failure). A parent failing in its own processor is claimed as it fails.
   */
  private failureWanted(queueName: string, job: Job): boolean {
    const parentQueueName = job.parentKey ? parseJobKey(job.parentKey)?.queueName : undefined;
    return (
      (parentQueueName !== undefined && this.registry.couldMatch({ kind: 'child-failed', queueName, jobName: job.name, parentQueueName })) ||
      (job.deferredFailure !== undefined && this.registry.couldMatch({ kind: 'parent-failed', queueName, jobName: job.name, causedByChild: true }))
    );
  }

  private bullConfig(): BullSharedConfig | undefined {
    try {
      return this.moduleRef.get<BullSharedConfig>(BULLMQ_DEFAULT_CONFIG_TOKEN, { strict: false });
    } catch {
      return undefined;
    }
  }
}
