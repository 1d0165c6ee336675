/** Redis did not answer when the module started. */
export class RedisUnreachableError extends Error {
  override readonly name = 'RedisUnreachableError';

  constructor(
    readonly address: string,
    cause: unknown,
  ) {
    super(
      `nestjs-flow-failure cannot reach Redis at ${address}: ${(cause instanceof Error ? cause.message : String(cause)).replace(/\.$/, '')}. ` +
        'Start Redis there, or pass `connection` to FlowFailureModule.forRoot().',
      { cause },
    );
  }
}
