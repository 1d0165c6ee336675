import type { LiveSource } from 'nestjs-flow-failure';

/** How the app process reacts to failures. */
export type ListenerKind = 'none' | 'raw-queue-events' | 'nest-on-queue-event' | 'flow-failure-module' | 'hand-written-reader';

export interface VariantSpec {
  listener: ListenerKind;
  /** Only for the module: what differs from its defaults (JSON, it crosses the process boundary). */
  moduleOptions?: { sources?: LiveSource[]; sweepIntervalMs?: number };
  /** The OpenTelemetry SDK registered in the app process (metrics and traces recorded). */
  telemetry?: boolean;
  description: string;
}

/** Every variant the scenarios measure; the first is the baseline of every ratio. */
export const VARIANTS = {
  'raw-queue-events': {
    listener: 'raw-queue-events',
    description: "bullmq QueueEvents, on('failed') per queue (baseline: gets only the job id)",
  },
  'nest-on-queue-event': {
    listener: 'nest-on-queue-event',
    description: "@nestjs/bullmq @QueueEventsListener + @OnQueueEvent('failed')",
  },
  'module-worker': {
    listener: 'flow-failure-module',
    // The sweep delivers what a Worker reports while the handlers have no room (it cannot be off here).
    moduleOptions: { sources: ['worker'], sweepIntervalMs: 1000 },
    description: "FlowFailureModule, sources: ['worker'], sweep every second",
  },
  'module-stream': {
    listener: 'flow-failure-module',
    moduleOptions: { sources: ['stream'], sweepIntervalMs: 0 },
    description: "FlowFailureModule, sources: ['stream'], periodic sweep off (what the reader finds trimmed is still swept)",
  },
  'module-both': {
    listener: 'flow-failure-module',
    moduleOptions: {},
    description: 'FlowFailureModule with its defaults (worker + stream sources, sweep every 30 s)',
  },
  'module-otel': {
    listener: 'flow-failure-module',
    moduleOptions: {},
    telemetry: true,
    description: 'FlowFailureModule with its defaults and the OpenTelemetry SDK registered (metrics collected every second, spans batched)',
  },
  none: {
    listener: 'none',
    description: 'the same app and Workers with no failure listener at all',
  },
  'hand-written-reader': {
    listener: 'hand-written-reader',
    description: "QueueEvents from lastEventId '0' + Job.fromId per failed event (what a user writes by hand)",
  },
} satisfies Record<string, VariantSpec>;

export type VariantName = keyof typeof VARIANTS;
export const BASELINE: VariantName = 'raw-queue-events';

export function variantSpec(name: VariantName): VariantSpec {
  return VARIANTS[name];
}
