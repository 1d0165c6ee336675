import type { FailureClassifier } from '../classifier/failure.classifier.js';
import type { FailureSignal } from '../classifier/failure-signal.js';
import type { RecentFailures } from '../classifier/recent-failures.js';
import type { FailureDispatcher } from '../dispatcher/failure.dispatcher.js';
import type { RedisKeys } from '../redis/redis-keys.js';

/** sources -> classifier -> dispatcher: what every source hands its signals to. */
export class FailurePipeline {
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly classifier: FailureClassifier,
    private readonly dispatcher: FailureDispatcher,
    private readonly recent: RecentFailures,
    private readonly keys: RedisKeys,
  ) {}

  /** No delivery between a source and the dispatcher. */
  get idle(): boolean {
    return this.inFlight.size === 0;
  }

  /** Resolves once every delivery under way has ended. */
  async drained(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /** Delivers nothing more: what comes now is delivered by the stream or the sweep after a restart. */
  close(): void {
    this.closed = true;
  }

  /** Resolves once the occurrences are recorded in Redis (their handlers run on). */
  deliver(signals: FailureSignal[]): Promise<void> {
    if (this.closed) return Promise.resolve();
    // A read that took none of the occurrence's claims found every handler that could want it
    // held elsewhere, done or dead: nothing is left to do here, but to count the failure when
    // this read recorded it first.
    const toClassify = onePerJob(signals).filter((s) => !s.claimed || s.claimed.granted.length > 0 || s.claimed.firstRecorded);
    const readClaims = toClassify.flatMap((signal) => signal.claimed ?? []);
    // The occurrences recorded in Redis (none when stopped before recording them).
    const recorded = this.dispatcher.delivering(toClassify.length, async () => {
      const occurrences = await this.classifier.classify(toClassify);
      return (await this.dispatcher.dispatch(occurrences, readClaims)) ? occurrences : [];
    });
    // A Worker's report: the stream's entry for the same failure arrives about now, and waits
    // for this instead of classifying and claiming it again.
    for (const { source, queueName, jobId, job } of signals) {
      const finishedOn = job?.finishedOn;
      if (source !== 'worker' || !finishedOn) continue;
      const isRecorded = recorded.then((occurrences) =>
        occurrences.some((o) => o.queueName === queueName && o.jobId === jobId && o.finishedOn === finishedOn),
      );
      this.recent.reporting(this.keys.job(queueName, jobId), finishedOn, isRecorded);
    }
    const delivery = recorded.then(() => undefined);
    this.inFlight.add(delivery);
    return delivery.finally(() => this.inFlight.delete(delivery));
  }
}

/**
 * A job's signals in one delivery come to one classification: it reads the job as it is
 * now (its latest failure), whichever entry or report named it. The first of them is kept.
 */
function onePerJob(signals: readonly FailureSignal[]): FailureSignal[] {
  const seen = new Set<string>();
  return signals.filter((signal) => {
    const job = `${signal.queueName}\n${signal.jobId}`;
    if (seen.has(job)) return false;
    seen.add(job);
    return true;
  });
}
