import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Job, type Queue, QueueEvents } from 'bullmq';
import { connectionOf } from '../../shared/connection.js';
import type { AppSpec } from '../../shared/protocol.js';
import { CHILDREN_QUEUE, PARENTS_QUEUE } from '../../shared/queues.js';
import { Recorder } from '../recorder.js';
import { APP_SPEC } from '../tokens.js';

/**
 * The catch-up baseline: what a user writes by hand to get the failures that happened while
 * the app was down, with the same facts as the module's events: read each events stream from
 * its start and load every failed job. It has no exactly-once (every replica reads everything,
 * and a restart reads it all again); it is here for speed only.
 */
@Injectable()
export class HandWrittenCatchUpReader implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('HandWrittenCatchUpReader');
  private readonly events: QueueEvents[] = [];

  constructor(
    private readonly recorder: Recorder,
    @Inject(APP_SPEC) private readonly spec: AppSpec,
    @InjectQueue(PARENTS_QUEUE) private readonly parents: Queue,
    @InjectQueue(CHILDREN_QUEUE) private readonly children: Queue,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    for (const queue of [this.parents, this.children]) {
      const events = new QueueEvents(queue.name, {
        connection: connectionOf(this.spec.redisUrl),
        prefix: this.spec.prefix,
        lastEventId: '0',
      });
      events.on('failed', ({ jobId }) => {
        Job.fromId(queue, jobId).then(
          (job) => this.recorder.hit(queue.name, jobId, job?.finishedOn),
          (error: unknown) => this.logger.warn(`Could not load ${queue.name}:${jobId}: ${String(error)}`),
        );
      });
      this.events.push(events);
    }
    await Promise.all(this.events.map((events) => events.waitUntilReady()));
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.events.map((events) => events.close()));
  }
}
