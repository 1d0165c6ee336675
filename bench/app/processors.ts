import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Type } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { BenchJobData } from '../shared/queues.js';

/**
 * A `@Processor` for one queue. Jobs with `fail` throw (attempts default to 1, so that is
 * their terminal failure); the rest succeed at once, so the measurements are of the failure
 * path, not of work. `autorun: false`: the bench starts the Workers once the listener is
 * ready, and can pause them to preload a backlog.
 */
export function processorFor(queueName: string, concurrency: number): Type<WorkerHost> {
  @Processor(queueName, { concurrency, autorun: false })
  class BenchProcessor extends WorkerHost {
    async process(job: Job<BenchJobData>): Promise<string> {
      if (job.data?.fail) throw new Error(`${job.name} failed on purpose`);
      return 'ok';
    }
  }
  Object.defineProperty(BenchProcessor, 'name', { value: `${queueName}Processor` });
  return BenchProcessor;
}
