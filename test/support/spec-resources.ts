import { afterAll, afterEach, beforeAll } from '@jest/globals';
import type { Worker } from 'bullmq';
import { type TestApp, TestRedis } from './harness.js';

/**
 * What the tests of one spec file start: a TestRedis for the file, and the apps and plain
 * Workers of each test, closed (and the prefix's keys deleted) after it.
 */
export function specResources(prefix: string) {
  const resources = {
    redis: undefined as unknown as TestRedis,
    apps: [] as TestApp[],
    workers: [] as Worker[],
  };
  beforeAll(() => {
    resources.redis = new TestRedis(prefix);
  });
  afterEach(async () => {
    await Promise.all(resources.apps.map((app) => app.close()));
    await Promise.all(resources.workers.map((worker) => worker.close()));
    resources.apps = [];
    resources.workers = [];
    await resources.redis.cleanup();
  });
  afterAll(async () => {
    await resources.redis.close();
  });
  return resources;
}
