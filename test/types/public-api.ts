/**
 * Type tests of the public API: checked by the compiler (`npm run test:types`, and with the
 * rest in `npm run typecheck`), never run. A line under `@ts-expect-error` must not compile;
 * should it start to, the directive itself is the error. `expectType<Equal<A, B>>()` compiles
 * only when A and B are the same type.
 */
import { Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import {
  FlowFailureConfigError,
  FlowFailureModule,
  FlowFailureService,
  OnChildFailed,
  OnParentFailed,
  RedisUnreachableError,
  type ChildFailedEvent,
  type ChildRef,
  type CompletedChild,
  type DeadLetter,
  type FailedChild,
  type FlowChildren,
  type HandlerContext,
  type FailureSource,
  type FlowFailureEvent,
  type FlowFailureEventKind,
  type FlowFailureModuleAsyncOptions,
  type FlowFailureModuleOptions,
  type FlowFailureConnection,
  type ClusterConnectionOptions,
  type JobRef,
  type LiveSource,
  type OnChildFailedOptions,
  type OnParentFailedOptions,
  type ParentFailedEvent,
  type ParentPolicy,
  type QueueNames,
  type ReplayResult,
  type RootCause,
} from 'nestjs-flow-failure';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | void {}

// The unions, exactly.
expectType<Equal<FlowFailureEvent, ParentFailedEvent | ChildFailedEvent>>();
expectType<Equal<FlowFailureEventKind, 'parent-failed' | 'child-failed'>>();
expectType<Equal<FailureSource, 'worker' | 'stream' | 'sweep'>>();
expectType<Equal<ParentPolicy, 'fail' | 'continue' | 'ignore' | 'remove' | 'wait'>>();
expectType<Equal<LiveSource, 'worker' | 'stream'>>();
expectType<Equal<QueueNames, string | string[]>>();

// The events' fields a handler reads.
expectType<Equal<ParentFailedEvent['job'], Job | undefined>>();
expectType<Equal<ParentFailedEvent['failedChild'], JobRef | undefined>>();
expectType<Equal<ParentFailedEvent['rootCause'], RootCause | undefined>>();
expectType<Equal<ParentFailedEvent['causedByChild'], boolean>>();
expectType<Equal<ChildFailedEvent['parent'], JobRef>>();
expectType<Equal<ChildFailedEvent['parentPolicy'], ParentPolicy>>();
expectType<Equal<ChildFailedEvent['attemptsMade'], number>>();
expectType<Equal<RootCause['stacktrace'], string[] | undefined>>();
expectType<Equal<JobRef, { queueName: string; jobId: string; key: string }>>();
expectType<Equal<ParentFailedEvent['children'], FlowChildren>>();
expectType<Equal<FlowChildren['completed'], CompletedChild[]>>();
expectType<Equal<FlowChildren['failed'], FailedChild[]>>();
expectType<Equal<FlowChildren['ignored'], FailedChild[]>>();
expectType<Equal<FlowChildren['pending'], ChildRef[]>>();
expectType<Equal<CompletedChild['returnValue'], unknown>>();
expectType<Equal<HandlerContext, { attempt: number; signal: AbortSignal }>>();

/** What a saga's compensation reads: what the other steps did. */
export function compensation(event: ParentFailedEvent): unknown {
  expectType<Equal<typeof event.rootCause, RootCause | undefined>>();
  const failedReason: string | undefined = event.rootCause?.failedReason;
  return [failedReason, event.children.completed.find((c) => c.queueName === 'payments')?.returnValue];
}

/** Narrowing on `kind` gives the one event or the other, and only its fields. */
export function narrowing(event: FlowFailureEvent): string {
  expectType<Equal<typeof event.source, FailureSource>>();
  if (event.kind === 'parent-failed') {
    expectType<Equal<typeof event, ParentFailedEvent>>();
    // @ts-expect-error a parent event has no parentPolicy
    return event.parentPolicy;
  }
  expectType<Equal<typeof event, ChildFailedEvent>>();
  // @ts-expect-error a child event has no causedByChild
  return String(event.causedByChild);
}

// Decorator arguments: nothing, a queue, queues, or the decorator's own options.
@Injectable()
export class Handlers {
  @OnParentFailed()
  @OnParentFailed('orders')
  @OnParentFailed(['orders', 'refunds'])
  @OnParentFailed({ queueName: 'orders', jobName: ['place', 'refund'], causedByChild: true })
  parent(_event: ParentFailedEvent) {}

  @OnChildFailed()
  @OnChildFailed({ queueName: ['payments'], jobName: 'charge', parentQueueName: 'orders' })
  child(_event: ChildFailedEvent) {}
}
expectType<Equal<Parameters<typeof OnParentFailed>[0], QueueNames | OnParentFailedOptions | undefined>>();
expectType<Equal<Parameters<typeof OnChildFailed>[0], QueueNames | OnChildFailedOptions | undefined>>();

// Wrong decorator input fails to compile, not only at start-up.
// @ts-expect-error an option of the other decorator
OnParentFailed({ parentQueueName: 'orders' });
// @ts-expect-error an option of the other decorator
OnChildFailed({ causedByChild: true });
// @ts-expect-error a misspelt option
OnParentFailed({ queue: 'orders' });
// @ts-expect-error not a queue name
OnParentFailed(42);
// @ts-expect-error causedByChild is a boolean
OnParentFailed({ causedByChild: 'yes' });
OnParentFailed({ queueName: 'orders', settled: true });
OnParentFailed({ queueName: 'orders', settled: { timeoutMs: 60_000 } });
// @ts-expect-error a settled wait is bounded in ms
OnParentFailed({ settled: { timeout: '1m' } });
// @ts-expect-error settled is a parent's option: a child's handler runs when the child fails
OnChildFailed({ settled: true });
// @ts-expect-error queue names are strings
OnChildFailed({ parentQueueName: [7] });

// Module options.
declare const redis: Redis;
expectType<
  Equal<
    keyof FlowFailureModuleOptions,
    | 'connection' | 'prefix' | 'queues' | 'consumerGroup' | 'handlerAttempts' | 'handlerBackoffMs' | 'handlerTimeoutMs'
    | 'dedupTtlMs' | 'leaseMs' | 'sources' | 'workerReservations' | 'sweepIntervalMs' | 'concurrency' | 'shutdownTimeoutMs'
    | 'settledTimeoutMs' | 'deadLetterTtlMs'
  >
>();
export const someOptions: FlowFailureModuleOptions = { prefix: '{bull}', queues: ['orders'], sources: ['stream'], workerReservations: false, sweepIntervalMs: 0 };
export const byUrl: FlowFailureModuleOptions = { connection: { url: 'redis://redis:6379' } };
export const byInstance: FlowFailureModuleOptions = { connection: redis };
declare const cluster: Cluster;
export const byCluster: FlowFailureModuleOptions = { connection: cluster };
const clusterOptions: ClusterConnectionOptions = { startupNodes: [{ host: 'redis-1', port: 7000 }, 'redis-2:7000'], scaleReads: 'master' };
export const byClusterOptions: FlowFailureModuleOptions = { connection: clusterOptions };
export const anyConnection: FlowFailureConnection[] = [redis, cluster, clusterOptions, { host: 'redis', port: 6379 }];
// @ts-expect-error a cluster needs its startup nodes
export const noNodes: ClusterConnectionOptions = { scaleReads: 'master' };
// @ts-expect-error a misspelt option
export const misspelt: FlowFailureModuleOptions = { handlerAttempt: 3 };
// @ts-expect-error the sweep is not a live source (sweepIntervalMs is its switch)
export const sweepSource: FlowFailureModuleOptions = { sources: ['sweep'] };
// @ts-expect-error a duration is a number of ms
export const textDuration: FlowFailureModuleOptions = { leaseMs: '30s' };

class Settings {
  readonly prefix = 'shop';
}
FlowFailureModule.forRoot();
FlowFailureModule.forRoot(someOptions);
FlowFailureModule.forRootAsync({ inject: [Settings], useFactory: (settings: Settings) => ({ prefix: settings.prefix }) });
FlowFailureModule.forRootAsync({ useFactory: async () => byUrl });
// @ts-expect-error the factory gives module options
FlowFailureModule.forRootAsync({ useFactory: () => ({ handlerAttempt: 3 }) });
// @ts-expect-error a factory is required
export const noFactory: FlowFailureModuleAsyncOptions = { inject: [Settings] };

// FlowFailureService.
expectType<Equal<Awaited<ReturnType<FlowFailureService['getDeadLetters']>>, DeadLetter[]>>();
expectType<Equal<Awaited<ReturnType<FlowFailureService['replay']>>, ReplayResult>>();
expectType<Equal<Awaited<ReturnType<FlowFailureService['replayAll']>>, ReplayResult[]>>();
expectType<Equal<Awaited<ReturnType<FlowFailureService['discard']>>, boolean>>();
expectType<Equal<Awaited<ReturnType<FlowFailureService['discardAll']>>, number>>();
expectType<Equal<Parameters<FlowFailureService['whenIdle']>, [timeoutMs?: number]>>();
expectType<Equal<ReplayResult, { id: string; ok: boolean; error?: string; skipped?: boolean }>>();
expectType<Equal<DeadLetter['kind'], FlowFailureEventKind>>();
expectType<Equal<keyof DeadLetter, 'id' | 'occurrenceId' | 'kind' | 'handler' | 'queueName' | 'jobId' | 'lastError' | 'attempts' | 'failedAt' | 'event'>>();
export async function replaying(service: FlowFailureService): Promise<void> {
  // @ts-expect-error a dead letter's id is a string
  await service.replay(42);
}

// The errors are Errors.
expectType<Equal<FlowFailureConfigError extends Error ? true : false, true>>();
expectType<Equal<RedisUnreachableError extends Error ? true : false, true>>();
