import { Injectable } from '@nestjs/common';
import { OnChildFailed, OnParentFailed, type ChildFailedEvent, type ParentFailedEvent } from 'nestjs-flow-failure';
import { CHILDREN_QUEUE, PARENTS_QUEUE } from '../../shared/queues.js';
import { Recorder } from '../recorder.js';
import { currentTracer } from '../tracing.js';

/** This module's decorators; the first statement of each handler records its start and `job.finishedOn`. */
@Injectable()
export class FlowFailureHandlers {
  constructor(private readonly recorder: Recorder) {}

  @OnParentFailed(PARENTS_QUEUE)
  onParentFailed(event: ParentFailedEvent): void {
    this.recorder.hit(event.queueName, event.jobId, event.job?.finishedOn);
    currentTracer()?.handlerStarted(event.id, event.source);
  }

  @OnChildFailed(CHILDREN_QUEUE)
  onChildFailed(event: ChildFailedEvent): void {
    this.recorder.hit(event.queueName, event.jobId, event.job?.finishedOn);
    currentTracer()?.handlerStarted(event.id, event.source);
  }
}
