import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { FlowFailureService } from 'nestjs-flow-failure';

export interface FlowFailureHealthOptions {
  /** Down when a watched stream has more unread entries than this. Default 10,000 (BullMQ trims its streams to about that many: past it, entries are lost to the sweep). */
  maxStreamLag?: number;
  /** Down when the consumer group keeps more dead letters than this. Default: not checked. */
  maxDeadLetters?: number;
  /** How long each Redis call of the check may take. Default 1 s. */
  timeoutMs?: number;
}

/**
 * A `@nestjs/terminus` health indicator: down when Redis does not answer, when a watched
 * events stream lags more than `maxStreamLag` entries, or when dead letters pass
 * `maxDeadLetters`. Meant for readiness and alerting: a restart cures none of these.
 */
@Injectable()
export class FlowFailureHealthIndicator {
  constructor(
    @Inject(HealthIndicatorService) private readonly health: HealthIndicatorService,
    @Inject(FlowFailureService) private readonly flowFailure: FlowFailureService,
  ) {}

  async isHealthy<const Key extends string = 'flow-failure'>(key: Key = 'flow-failure' as Key, options: FlowFailureHealthOptions = {}) {
    const { maxStreamLag = 10_000, maxDeadLetters, timeoutMs = 1000 } = options;
    const indicator = this.health.check(key);
    const status = await this.flowFailure.status(timeoutMs);
    const lagging = status.streams.filter((s) => s.lag !== undefined && s.lag > maxStreamLag).map((s) => s.queueName);
    const problems = [
      ...(status.redis.up ? [] : [`Redis ${status.redis.address} does not answer`]),
      ...lagging.map((queue) => `the events stream of ${queue} lags more than ${maxStreamLag} entries`),
      ...(maxDeadLetters !== undefined && (status.deadLetters ?? 0) > maxDeadLetters ? [`${status.deadLetters} dead letters (more than ${maxDeadLetters})`] : []),
    ];
    const details = { redis: status.redis, streams: status.streams, deadLetters: status.deadLetters, backlog: status.backlog };
    return problems.length > 0 ? indicator.down({ ...details, problems }) : indicator.up(details);
  }
}
