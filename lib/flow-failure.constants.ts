/** Metadata key under which the decorators store their raw arguments (validated at start-up). */
export const FLOW_FAILURE_HANDLER_METADATA = 'nestjs-flow-failure:handlers';

/** Injection token of the options given to `forRoot()` / `forRootAsync()`. */
export const FLOW_FAILURE_MODULE_OPTIONS = 'FLOW_FAILURE_MODULE_OPTIONS';

/** Set by `@nestjs/bullmq`'s `@Processor()`; read by name so that package stays optional. */
export const BULLMQ_PROCESSOR_METADATA = 'bullmq:processor_metadata';
/** The token of `BullModule.forRoot()`'s options (its default config key). */
export const BULLMQ_DEFAULT_CONFIG_TOKEN = 'BULLMQ_CONFIG(default)';

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 6379,
  prefix: 'bull',
  consumerGroup: 'flow-failure',
  handlerAttempts: 5,
  handlerBackoffMs: 1000,
  handlerTimeoutMs: 60_000,
  dedupTtlMs: 7 * 24 * 60 * 60 * 1000,
  leaseMs: 30_000,
  sweepIntervalMs: 30_000,
  concurrency: 50,
  shutdownTimeoutMs: 10_000,
  settledTimeoutMs: 10 * 60 * 1000,
  deadLetterTtlMs: 30 * 24 * 60 * 60 * 1000,
} as const;
