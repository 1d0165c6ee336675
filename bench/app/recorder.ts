import { preciseNow } from './clock.js';
import type { AppStatus, HandlerSample } from '../shared/protocol.js';

/**
 * Where every variant's handler reports that it started. Called as the handler's first
 * statement, so the time it takes is what the user's code would see. In 'count' mode it keeps
 * counters only: the memory scenario must not measure the recorder growing.
 */
export class Recorder {
  private readonly samples: HandlerSample[] = [];
  private runs = 0;
  private firstRunAt?: number;
  private lastRunAt?: number;
  completed = 0;
  failed = 0;

  constructor(private readonly mode: 'samples' | 'count') {}

  hit(queueName: string, jobId: string, finishedOn?: number): void {
    const at = preciseNow();
    this.runs++;
    this.firstRunAt ??= at;
    this.lastRunAt = at;
    if (this.mode === 'samples') this.samples.push({ queueName, jobId, at, finishedOn: finishedOn ?? undefined });
  }

  status(): AppStatus {
    return {
      runs: this.runs,
      firstRunAt: this.firstRunAt,
      lastRunAt: this.lastRunAt,
      completed: this.completed,
      failed: this.failed,
    };
  }

  allSamples(): HandlerSample[] {
    return this.samples;
  }
}
