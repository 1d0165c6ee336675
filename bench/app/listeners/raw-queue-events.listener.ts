import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { QueueEvents } from 'bullmq';
import { connectionOf } from '../../shared/connection.js';
import type { AppSpec } from '../../shared/protocol.js';
import { WATCHED_QUEUES } from '../../shared/queues.js';
import { Recorder } from '../recorder.js';
import { preciseNow } from '../clock.js';
import { currentTracer } from '../tracing.js';
import { APP_SPEC } from '../tokens.js';

/**
 * The baseline: plain bullmq `QueueEvents`, one per queue, `on('failed')`. It gets only
 * `{ jobId, failedReason, prev }`, so its `finishedOn` is looked up after the run, outside
 * the timed path. Lives in a provider only for its lifecycle; Nest plays no part in delivery.
 */
@Injectable()
export class RawQueueEventsListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly events: QueueEvents[] = [];

  constructor(
    private readonly recorder: Recorder,
    @Inject(APP_SPEC) private readonly spec: AppSpec,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    for (const queueName of WATCHED_QUEUES) {
      const events = new QueueEvents(queueName, { connection: connectionOf(this.spec.redisUrl), prefix: this.spec.prefix });
      events.on('failed', ({ jobId }, id) => {
        this.recorder.hit(queueName, jobId);
        const tracer = currentTracer();
        if (tracer) tracer.note('raw:xadd-to-listener', preciseNow() - Number(id.split('-')[0]));
      });
      this.events.push(events);
    }
    await Promise.all(this.events.map((events) => events.waitUntilReady()));
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.events.map((events) => events.close()));
  }
}
