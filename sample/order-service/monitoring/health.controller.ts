import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { FlowFailureHealthIndicator } from 'nestjs-flow-failure/terminus';

/** GET /health: 200 and `status: ok` while FlowFailureModule reaches Redis and keeps up with the queues' events. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly flowFailure: FlowFailureHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.flowFailure.isHealthy('flow-failure')]);
  }
}
