import { Logger } from '@nestjs/common';
import type { Job, Worker } from 'bullmq';
import type { FailureSignal } from '../classifier/failure-signal.js';
import { MESSAGES } from '../flow-failure.messages.js';

type FailedListener = (job: Job | undefined, error: Error, prev: string) => void;
type ActiveListener = (job: Job) => void;

/** What the Worker source asks of the rest of the module. */
export interface WorkerSourceHooks {
  /** A Worker started a job, with room for its failure: its failure is reserved, or a parent's children read ahead, if a handler may want them. */
  jobStarted(queueName: string, job: Job): void;
  /** Whether the handlers have room for one more failure here. */
  hasRoom(): boolean;
  /** A failure this instance has no room for: the stream or another replica delivers it. */
  passOn(queueName: string, job: Job): void;
}

/**
 * The fastest source: the app's own Workers, in memory. Keeps only final failures
 * (a Worker emits 'failed' for every attempt; `finishedOn` is set only on the last), and is
 * the only source that still has a job removed by `removeOnFail`.
 */
export class WorkerSource {
  private readonly logger = new Logger('FlowFailureModule');
  private readonly listeners = new Map<Worker, { failed: FailedListener; active: ActiveListener }>();

  constructor(
    private readonly prefix: string,
    private readonly deliver: (signals: FailureSignal[]) => Promise<void>,
    private readonly hooks: WorkerSourceHooks,
  ) {}

  attach(worker: Worker): void {
    if (this.listeners.has(worker)) return;
    const workerPrefix = worker.opts.prefix ?? 'bull';
    if (workerPrefix !== this.prefix) {
      this.logger.warn(MESSAGES.workerPrefixMismatch(worker.name, workerPrefix, this.prefix));
      return;
    }
    const listener: FailedListener = (job) => {
      if (!job?.id || !job.finishedOn) return;
      // A Worker cannot be made to wait: what the handlers have no room for is left to the
      // stream, read as they have room, here or in another replica.
      if (!this.hooks.hasRoom()) return this.hooks.passOn(worker.name, job);
      // Never awaited: the Worker goes on with its next job while the handlers run.
      this.deliver([{ source: 'worker', queueName: worker.name, jobId: job.id, job }]).catch((error: unknown) => {
        this.logger.warn(MESSAGES.workerDeliveryFailed(worker.name, job.id as string, error));
      });
    };
    worker.on('failed', listener);
    // A reservation pays only when the failure can start its handlers at once: with no room
    // it would be passed on, and the reservation given back, two scripts for nothing.
    const active: ActiveListener = (job) => {
      if (this.hooks.hasRoom()) this.hooks.jobStarted(worker.name, job);
    };
    worker.on('active', active);
    this.listeners.set(worker, { failed: listener, active });
  }

  /** Whether a Worker of this queue reports here. */
  covers(queueName: string): boolean {
    return [...this.listeners.keys()].some((worker) => worker.name === queueName);
  }

  detachAll(): void {
    for (const [worker, { failed, active }] of this.listeners) {
      worker.off('failed', failed);
      worker.off('active', active);
    }
    this.listeners.clear();
  }
}
