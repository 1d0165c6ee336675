import { OnQueueEvent, QueueEventsHost, QueueEventsListener } from '@nestjs/bullmq';
import { CHILDREN_QUEUE, PARENTS_QUEUE } from '../../shared/queues.js';
import { Recorder } from '../recorder.js';

/** What a @nestjs/bullmq user writes today: one listener class per queue. */
@QueueEventsListener(PARENTS_QUEUE)
export class ParentsQueueEventsListener extends QueueEventsHost {
  constructor(private readonly recorder: Recorder) {
    super();
  }

  @OnQueueEvent('failed')
  onFailed({ jobId }: { jobId: string }): void {
    this.recorder.hit(PARENTS_QUEUE, jobId);
  }
}

@QueueEventsListener(CHILDREN_QUEUE)
export class ChildrenQueueEventsListener extends QueueEventsHost {
  constructor(private readonly recorder: Recorder) {
    super();
  }

  @OnQueueEvent('failed')
  onFailed({ jobId }: { jobId: string }): void {
    this.recorder.hit(CHILDREN_QUEUE, jobId);
  }
}
