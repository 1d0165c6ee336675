import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { OnChildFailed, OnParentFailed, type FlowFailureEvent } from '../../lib/index.js';
import { EventLog, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

@Injectable()
class StackedHandlers {
  constructor(private readonly log: EventLog) {}

  // Each failing order matches both parent decorators, and its charge both child decorators.
  @OnParentFailed('orders')
  @OnParentFailed({ queueName: 'orders', causedByChild: true })
  @OnChildFailed('payments')
  @OnChildFailed({ parentQueueName: 'orders' })
  stacked(event: FlowFailureEvent) {
    this.log.record('stacked', event);
  }

  // Matches none of them: an order's own failure, or a refund.
  @OnParentFailed({ queueName: 'orders', causedByChild: false })
  @OnChildFailed({ jobName: 'refund' })
  unmatched(event: FlowFailureEvent) {
    this.log.record('unmatched', event);
  }
}

describe('stacked decorators', () => {
  const prefix = uniquePrefix('decorators');
  const spec = specResources(prefix);

  test('several on one method run it once per event when any of them matches, and not at all when none does', async () => {
    const app = await spec.start({ processors: ['orders', 'payments'], handlers: [StackedHandlers] });
    const flows = await spec.redis.failOrders(3);
    await waitUntil('six runs', () => app.log.runs.length >= 6);
    await settle(app);
    const runs = app.log.of('stacked').map((event) => `${event.kind} ${event.jobId}`).sort();
    expect(runs).toEqual(
      flows.flatMap((flow) => [`parent-failed ${flow.job.id}`, `child-failed ${flow.children?.[0].job.id}`]).sort(),
    );
    expect(app.log.of('unmatched')).toEqual([]);
  });
});
