import 'reflect-metadata';
import { describe, expect, test } from '@jest/globals';
import { OnChildFailed, OnParentFailed } from '../../lib/index.js';
import { filterMatches, HandlerMetadataAccessor } from '../support/internals.js';

class Handlers {
  @OnParentFailed('orders')
  @OnParentFailed({ queueName: ['refunds'], jobName: 'refund', causedByChild: true })
  @OnChildFailed({ parentQueueName: 'orders' })
  stacked() {}
}

describe('decorators and their metadata', () => {
  const accessor = new HandlerMetadataAccessor();
  const raw = accessor.getRaw(Handlers.prototype.stacked);

  test('stacked decorators all record, in order', () => {
    expect(raw.map((r) => r.kind)).toEqual(['child-failed', 'parent-failed', 'parent-failed']);
  });

  test('filters match on queue, job name, cause and parent queue', () => {
    const [child, refunds, orders] = raw.map((r) => accessor.toFilter(r, 'Handlers.stacked'));
    expect(filterMatches(orders, { kind: 'parent-failed', queueName: 'orders' })).toBe(true);
    expect(filterMatches(orders, { kind: 'parent-failed', queueName: 'other' })).toBe(false);
    expect(filterMatches(refunds, { kind: 'parent-failed', queueName: 'refunds', jobName: 'refund', causedByChild: true })).toBe(true);
    expect(filterMatches(refunds, { kind: 'parent-failed', queueName: 'refunds', jobName: 'refund', causedByChild: false })).toBe(false);
    expect(filterMatches(refunds, { kind: 'parent-failed', queueName: 'refunds', causedByChild: true })).toBe(false);
    expect(filterMatches(child, { kind: 'child-failed', queueName: 'any', parentQueueName: 'orders' })).toBe(true);
    expect(filterMatches(child, { kind: 'child-failed', queueName: 'any', parentQueueName: 'else' })).toBe(false);
  });

  test('bad arguments name the decorator, class and method', () => {
    const bad = { kind: 'parent-failed' as const, decorator: '@OnParentFailed', argument: { queueName: [] } };
    expect(() => accessor.toFilter(bad, 'Shop.undo')).toThrow('@OnParentFailed on Shop.undo: the list of queue names is empty');
    expect(() => accessor.toFilter({ ...bad, argument: 7 }, 'Shop.undo')).toThrow(/Shop\.undo: expected a queue name/);
    expect(() => accessor.toFilter({ ...bad, argument: { causedByChild: 'yes' } }, 'Shop.undo')).toThrow(/causedByChild must be a boolean/);
  });
});
