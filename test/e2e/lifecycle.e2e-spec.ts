import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { Injectable } from '@nestjs/common';
import { OnChildFailed, type ChildFailedEvent } from '../../lib/index.js';
import { Breakage, EventLog, settle, uniquePrefix, waitUntil } from '../support/harness.js';
import { specResources } from '../support/spec-resources.js';

@Injectable()
class SlowHandlers {
  constructor(
    private readonly log: EventLog,
    private readonly breakage: Breakage,
  ) {}

  @OnChildFailed({ jobName: 'slow' })
  slow(event: ChildFailedEvent) {
    return this.log.run('slow', event, 1500);
  }

  @OnChildFailed({ jobName: 'poison' })
  poison(event: ChildFailedEvent) {
    this.breakage.check(event.jobId, `poisoned ${event.jobId}`);
    this.log.record('poison', event);
  }
}

@Injectable()
class PairHandlers {
  constructor(
    private readonly log: EventLog,
    private readonly breakage: Breakage,
  ) {}

  @OnChildFailed({ jobName: 'pair' })
  dies(event: ChildFailedEvent) {
    this.breakage.check(event.jobId, 'ledger down');
    this.log.record('dies', event);
  }

  @OnChildFailed({ jobName: 'pair' })
  slowlySucceeds(event: ChildFailedEvent) {
    return this.log.run('slow', event, 300);
  }
}

/** Apps that only react; the Workers run in the test, as in a split deployment. */
describe('lifecycle', () => {
  const prefix = uniquePrefix('lifecycle');
  const spec = specResources(prefix);
  const options = { queues: ['parents', 'children'], shutdownTimeoutMs: 100, handlerAttempts: 2, handlerBackoffMs: 10 };
  const start = () => spec.start({ handlers: [SlowHandlers], options });
  const failChild = async (name: string) => {
    spec.worker('parents');
    spec.worker('children');
    const [childId] = await spec.redis.failChildren(1, { name });
    return childId;
  };

  test('app.close() hands back an unfinished claim, and another instance takes it long before the lease ends', async () => {
    const first = await start();
    await failChild('slow');
    await waitUntil('the slow handler started', () => first.log.started.length === 1);
    const closedAt = Date.now();
    await first.close();

    const second = await start();
    await waitUntil('the second instance completes it', () => second.log.of('slow').length === 1, 10_000);
    // The default lease is 30 s; the hand-back made it free at once.
    expect(Date.now() - closedAt).toBeLessThan(10_000);
    expect(second.log.of('slow')[0].id).toBe(first.log.started[0].event.id);
    await settle(second);
  });

  test('dead letters survive a restart and can be discarded: never run again, even with the handler fixed', async () => {
    const app = await start();
    const childId = await failChild('poison');
    await waitUntil('a dead letter', async () => (await app.flowFailure.getDeadLetters()).some((l) => l.jobId === childId));
    await app.close();

    const again = await start();
    const letters = await again.flowFailure.getDeadLetters();
    expect(letters).toEqual([expect.objectContaining({ jobId: childId, attempts: 2, lastError: `poisoned ${childId}`, handler: 'SlowHandlers.poison' })]);

    expect(await again.flowFailure.discard(letters[0].id)).toBe(true);
    expect(await again.flowFailure.getDeadLetters()).toEqual([]);
    again.app.get(Breakage).fixExcept();
    expect(await again.flowFailure.replay(letters[0].id)).toMatchObject({ ok: false });
    await settle(again);
    expect(again.log.of('poison')).toEqual([]);
  });

  test('a dead letter beside a handler that succeeded can still be replayed after the dedup TTL the success started', async () => {
    const app = await spec.start({ handlers: [PairHandlers], options: { queues: ['parents', 'children'], handlerAttempts: 1, leaseMs: 1000, dedupTtlMs: 2000 } });
    await failChild('pair');
    await waitUntil('the slow handler succeeded', () => app.log.of('slow').length === 1);
    const [letter] = await app.flowFailure.getDeadLetters();
    expect(letter).toMatchObject({ handler: 'PairHandlers.dies', lastError: 'ledger down' });

    await new Promise((resolve) => setTimeout(resolve, 2500)); // past dedupTtlMs: a done occurrence would be forgotten now
    app.app.get(Breakage).fixExcept();
    expect(await app.flowFailure.replay(letter.id)).toEqual({ id: letter.id, ok: true });
    expect(app.log.of('dies')).toHaveLength(1);
    expect(app.log.of('slow')).toHaveLength(1);
  });
});
