import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { Redis } from 'ioredis';
import { deadLetterQueueName } from 'nestjs-flow-failure';
import { hasRedisServerBinary, holdPort, redisAnswers } from '../support/redis-server.mjs';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const COMPILED_SAMPLE = join(REPO, 'sample', 'dist', 'main.js');

interface Run {
  code: number | null;
  output: string;
  lines: string[];
}

interface Running {
  /** The first match of `pattern` in the output so far or to come; rejects when the process ends first. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  /** Ctrl+C in a terminal: SIGINT to the whole process group (npm, the shell and node). */
  interrupt(): void;
  closed: Promise<Run>;
}

/** Starts a command in the repository the way a user would, killing it (and its children) after `timeoutMs`. */
function start(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Running {
  // Its own process group, so a timeout stops npm, the shell and node together.
  const child = spawn(command, args, { cwd: REPO, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let ended = false;
  const waiters = new Set<() => void>();
  const onOutput = (chunk: Buffer) => {
    output += chunk.toString();
    for (const check of waiters) check();
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  const closed = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(-(child.pid as number), 'SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not exit within ${timeoutMs} ms (open handles?). Output:\n${output}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      ended = true;
      for (const check of waiters) check();
      resolve({ code, output, lines: output.split('\n') });
    });
  });
  closed.catch(() => undefined); // reported by whoever awaits it
  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(output);
        if (!match && !ended) return;
        waiters.delete(check);
        if (match) resolve(match);
        else reject(new Error(`${command} ${args.join(' ')} ended without printing ${pattern}. Output:\n${output}`));
      };
      waiters.add(check);
      check();
    });
  const interrupt = () => {
    if (!ended) process.kill(-(child.pid as number), 'SIGINT');
  };
  return { waitFor, interrupt, closed };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return start(command, args, env, timeoutMs).closed;
}

function linesOf(result: Run, pattern: RegExp): string[] {
  return result.lines.filter((line) => pattern.test(line));
}

/** The sum of a metric's samples, in Prometheus's text format, whose labels include `match`. */
function metricTotal(text: string, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const [, metric, labelText, value] of text.matchAll(/^(\w+)\{(.*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map(([, key, label]) => [key, label]));
    if (metric === name && Object.entries(match).every(([key, label]) => labels[key] === label)) total += Number(value);
  }
  return total;
}

async function keysWithPrefix(prefix: string): Promise<string[]> {
  const redis = new Redis(process.env.REDIS_URL as string);
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return keys;
  } finally {
    await redis.quit();
  }
}

/** What the sample serves while it runs: Prometheus metrics, the Terminus health check, bull-board. */
async function expectMonitoring(url: string): Promise<void> {
  // Prometheus, through the OpenTelemetry exporter: `flow_failure.failures` is `flow_failure_failures_total`.
  const metrics = await fetch(`${url}/metrics`);
  expect(metrics.status).toBe(200);
  const text = await metrics.text();
  expect(metricTotal(text, 'flow_failure_failures_total', { kind: 'parent-failed', queue: 'orders', caused_by_child: 'true' })).toBe(3);
  expect(metricTotal(text, 'flow_failure_failures_total', { kind: 'child-failed' })).toBe(4);
  expect(metricTotal(text, 'flow_failure_handler_runs_total', { handler: 'OrderCompensation.compensate', outcome: 'ok' })).toBe(3);
  expect(metricTotal(text, 'flow_failure_handler_runs_total', { handler: 'ChildFailureRecorder.record', outcome: 'ok' })).toBe(4);
  expect(metricTotal(text, 'flow_failure_handler_runs_total')).toBe(7); // no attempt failed
  expect(metricTotal(text, 'flow_failure_backlog')).toBe(0);
  // A dead-letter series for each handler, 0 while it has none: an alert rule on it needs no absent().
  const deadLetters = [...text.matchAll(/^flow_failure_dead_letters\{.*handler="([^"]+)".*\} (\S+)$/gm)].map(([, handler, value]) => `${handler} ${value}`);
  expect(deadLetters.sort()).toEqual(['ChildFailureRecorder.record 0', 'OrderCompensation.compensate 0']);

  // Terminus, with FlowFailureHealthIndicator.
  const health = await fetch(`${url}/health`);
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ status: 'ok', info: { 'flow-failure': { status: 'up', redis: { up: true }, deadLetters: 0, backlog: 0 } } });

  // bull-board's own API: the order's queues, and the dead letters' (empty: no handler kept failing).
  const board = await fetch(`${url}/queues/api/queues`);
  expect(board.status).toBe(200);
  const { queues } = (await board.json()) as { queues: { name: string; counts: Record<string, number> }[] };
  expect(queues.map((queue) => queue.name).sort()).toEqual([deadLetterQueueName(), 'notifications', 'orders', 'payments', 'stock']);
  expect(queues.find((queue) => queue.name === 'orders')?.counts).toMatchObject({ completed: 3, failed: 3 });
  expect(queues.find((queue) => queue.name === deadLetterQueueName())?.counts).toMatchObject({ failed: 0 });
}

describe('the sample order service', () => {
  test('`npm run sample -- --serve` compensates each bad order once (a late payment too), serves its monitoring, and cleans up on Ctrl+C', async () => {
    const sample = start('npm', ['run', 'sample', '--', '--serve'], { ...process.env, PORT: '0' }, 120_000);
    try {
      const [, url] = await sample.waitFor(/^serving (http:\/\/\S+) until Ctrl\+C$/m);
      await expectMonitoring(url);
    } finally {
      // Ctrl+C: npm reports the interrupt as its own exit; the sample closes the service and deletes its keys.
      sample.interrupt();
    }
    const result = await sample.closed;
    expect(result.output).toMatch(/^stopped; deleted the \d+ keys of sample-\w+$/m);

    // Good orders: completed, no failure line of any kind.
    for (const order of [1, 5]) {
      expect(linesOf(result, new RegExp(`^order ${order} completed: .*confirmation sent to`))).toHaveLength(1);
      expect(linesOf(result, new RegExp(`^order ${order} (failed|incident|late step)`))).toEqual([]);
    }

    // Declined card: the payment job is the root cause, the reserved widget goes back, nothing to refund.
    const [declined] = linesOf(result, /^order 2 failed: /);
    expect(linesOf(result, /^order 2 failed: /)).toHaveLength(1);
    expect(declined).toMatch(/^order 2 failed: payments\/charge-payment (\w+) -> "card declined" \(root cause\); released 1 x widget, refunded 0\.00$/);
    const paymentJob = /charge-payment (\w+)/.exec(declined)?.[1];
    expect(linesOf(result, /^order 2 incident: /)).toEqual([
      `order 2 incident: payments/charge-payment ${paymentJob} failed after 2 attempts -> "card declined" (policy fail: the order failed with it)`,
    ]);

    // Out of stock: the stock job is the root cause, the payment is refunded.
    const [outOfStock] = linesOf(result, /^order 3 failed: /);
    expect(linesOf(result, /^order 3 failed: /)).toHaveLength(1);
    expect(outOfStock).toMatch(/^order 3 failed: stock\/reserve-stock (\w+) -> "out of stock: gizmo" \(root cause\); released no stock, refunded 40\.00$/);
    const stockJob = /reserve-stock (\w+)/.exec(outOfStock)?.[1];
    expect(linesOf(result, /^order 3 incident: /)).toEqual([
      `order 3 incident: stock/reserve-stock ${stockJob} failed after 2 attempts -> "out of stock: gizmo" (policy fail: the order failed with it)`,
    ]);

    // Bad e-mail address: the order completes anyway (ignore policy); the child failure is recorded once.
    expect(linesOf(result, /^order 4 failed/)).toEqual([]);
    expect(linesOf(result, /^order 4 completed: .*no confirmation \(bad e-mail address: grace@\)$/)).toHaveLength(1);
    expect(linesOf(result, /^order 4 incident: /)).toEqual([
      expect.stringMatching(
        /^order 4 incident: notifications\/send-confirmation \w+ failed after 2 attempts -> "bad e-mail address: grace@" \(policy ignore: the order went on without it\)$/,
      ),
    ]);

    // Out of stock while the payment waited for the customer: the payment completed after the
    // order had failed, and the settled compensation refunded it, once.
    expect(linesOf(result, /^order 6 failed: /)).toEqual([
      expect.stringMatching(/^order 6 failed: stock\/reserve-stock \w+ -> "out of stock: gizmo" \(root cause\); released no stock, refunded 40\.00$/),
    ]);
    expect(linesOf(result, /^order 6 late step: /)).toEqual([
      expect.stringMatching(/^order 6 late step: payments\/charge-payment \w+ completed \d+\.\d s after the order failed$/),
    ]);
    expect(linesOf(result, /still holds/)).toEqual([]);

    expect(linesOf(result, /^summary: /)).toEqual([
      expect.stringMatching(
        /^summary: 6 orders, 3 completed, 3 failed and compensated \(1 step finished after the order failed\); 4 failed steps recorded; 7 failure events, each handled once; no failed order holds money or stock \(/,
      ),
    ]);
    expect(linesOf(result, /^traces: /)).toEqual(['traces: 7 spans "flow_failure.handle": 4 x ChildFailureRecorder.record ok, 3 x OrderCompensation.compensate ok']);

    // The run's keys (queues and FlowFailureModule's) are gone from the shared Redis.
    const prefix = /key prefix (sample-\w+)/.exec(result.output)?.[1];
    expect(prefix).toBeDefined();
    expect(await keysWithPrefix(prefix as string)).toEqual([]);
  }, 150_000);

  // The two tests below run the sample compiled by the first one.

  (hasRedisServerBinary() ? test : test.skip)('starts a redis-server of its own when none answers, and stops it after', async () => {
    const { port, release } = await holdPort();
    const env = { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}`, PORT: '0' };
    const result = await run(process.execPath, [COMPILED_SAMPLE], env, 60_000).finally(release);
    expect({ code: result.code, output: result.output }).toMatchObject({ code: 0 });
    expect(result.output).toMatch(/^Redis 127\.0\.0\.1:\d+ \(started for this run\)/m);
    expect(result.output).toMatch(/^summary: .*each handled once/m);
    const started = Number(/^Redis 127\.0\.0\.1:(\d+)/m.exec(result.output)?.[1]);
    expect(await redisAnswers('127.0.0.1', started)).toBe(false);
  }, 60_000);

  test('explains how to get Redis and exits non-zero when there is no Redis and no redis-server', async () => {
    const { port, release } = await holdPort();
    const emptyPath = mkdtempSync(join(tmpdir(), 'sample-no-redis-'));
    try {
      const env = { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}`, PATH: emptyPath };
      const result = await run(process.execPath, [COMPILED_SAMPLE], env, 30_000);
      expect(result.code).not.toBe(0);
      expect(result.output).toContain(`nothing answered at redis://127.0.0.1:${port}`);
      expect(result.output).toContain('REDIS_URL=redis://host:port npm run sample');
    } finally {
      await release();
      rmSync(emptyPath, { recursive: true, force: true });
    }
  }, 30_000);
});
