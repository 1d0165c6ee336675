import { BullModule, type WorkerHost } from '@nestjs/bullmq';
import { Module, type Provider, type Type } from '@nestjs/common';
import { FlowFailureModule } from 'nestjs-flow-failure';
import { connectionOf } from '../shared/connection.js';
import type { AppSpec } from '../shared/protocol.js';
import { WATCHED_QUEUES } from '../shared/queues.js';
import { type ListenerKind, variantSpec } from '../shared/variants.js';
import { FlowFailureHandlers } from './listeners/flow-failure.handlers.js';
import { HandWrittenCatchUpReader } from './listeners/hand-written-reader.js';
import { ChildrenQueueEventsListener, ParentsQueueEventsListener } from './listeners/nest-queue-events.listener.js';
import { RawQueueEventsListener } from './listeners/raw-queue-events.listener.js';
import { processorFor } from './processors.js';
import { Recorder } from './recorder.js';
import { APP_SPEC } from './tokens.js';

export interface BenchApp {
  module: Type;
  /** Resolve with app.get() to reach their Workers. */
  processors: Type<WorkerHost>[];
}

const LISTENER_PROVIDERS: Record<ListenerKind, Provider[]> = {
  none: [],
  'raw-queue-events': [RawQueueEventsListener],
  'nest-on-queue-event': [ParentsQueueEventsListener, ChildrenQueueEventsListener],
  'flow-failure-module': [FlowFailureHandlers],
  'hand-written-reader': [HandWrittenCatchUpReader],
};

/**
 * The root module of an app process. Every variant has the same BullModule, queues and
 * (in the 'workers' layout) Workers; only the failure listener differs, so the ratios compare
 * listeners, not apps.
 */
export function buildBenchApp(spec: AppSpec, recorder: Recorder): BenchApp {
  const variant = variantSpec(spec.variant);
  const processors = spec.layout === 'workers' ? WATCHED_QUEUES.map((queue) => processorFor(queue, spec.workerConcurrency)) : [];
  const streams = spec.eventsMaxLen ? { streams: { events: { maxLen: spec.eventsMaxLen } } } : {};
  const imports = [
    BullModule.forRoot({ connection: connectionOf(spec.redisUrl), prefix: spec.prefix, ...streams }),
    BullModule.registerQueue(...WATCHED_QUEUES.map((name) => ({ name }))),
    ...(variant.listener === 'flow-failure-module' ? [FlowFailureModule.forRoot(variant.moduleOptions)] : []),
  ];

  @Module({
    imports,
    providers: [
      { provide: Recorder, useValue: recorder },
      { provide: APP_SPEC, useValue: spec },
      ...processors,
      ...LISTENER_PROVIDERS[variant.listener],
    ],
  })
  class BenchAppModule {}

  return { module: BenchAppModule, processors };
}
