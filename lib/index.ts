export { FlowFailureModule } from './flow-failure.module.js';
export { FlowFailureService, type ReplayResult } from './service/flow-failure.service.js';
export { OnParentFailed } from './decorators/on-parent-failed.decorator.js';
export { OnChildFailed } from './decorators/on-child-failed.decorator.js';
export type { DeadLetter, DeadLetterEvent } from './dead-letters/dead-letter.js';
export { deadLetterQueueName } from './redis/redis-keys.js';
export type { ClusterConnectionOptions } from './redis/redis-target.js';
export type { UnclassifiedFailure } from './classifier/bad-jobs.js';
export type { RunResult } from './dispatcher/run.js';
export type {
  ChildFailedEvent,
  ChildRef,
  CompletedChild,
  FailedChild,
  FlowChildren,
  FailureSource,
  FlowFailureEvent,
  FlowFailureEventKind,
  JobRef,
  ParentFailedEvent,
  ParentPolicy,
  RootCause,
} from './interfaces/failure-events.interface.js';
export type { OnChildFailedOptions, OnParentFailedOptions, QueueNames } from './interfaces/handler-options.interface.js';
export type { HandlerContext } from './interfaces/handler-context.interface.js';
export type { FlowFailureStatus } from './interfaces/flow-failure-status.interface.js';
export type {
  FlowFailureModuleAsyncOptions,
  FlowFailureModuleOptions,
  LiveSource,
  FlowFailureConnection,
} from './interfaces/flow-failure-options.interface.js';
export { FlowFailureConfigError, RedisUnreachableError } from './errors/index.js';
export {
  DIAGNOSTICS_CHANNELS,
  type ClaimTrace,
  type ClassifyTrace,
  type LoadJobTrace,
  type ReservationMessage,
  type StreamReadMessage,
  type TracedOccurrence,
} from './diagnostics.js';
