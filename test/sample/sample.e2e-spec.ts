import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';
import { Redis } from 'ioredis';
import { hasRedisServerBinary, holdPort, redisAnswers } from '../support/redis-server.mjs';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const COMPILED_SAMPLE = join(REPO, 'sample', 'dist', 'main.js');

interface Run {
  code: number | null;
  output: string;
  lines: string[];
}

/** Runs a command in the repository the way a user would, killing it (and its children) after `timeoutMs`. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout stops npm, the shell and node together.
    const child = spawn(command, args, { cwd: REPO, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      process.kill(-(child.pid as number), 'SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not exit within ${timeoutMs} ms (open handles?). Output:\n${output}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, lines: output.split('\n') });
    });
  });
}

function linesOf(result: Run, pattern: RegExp): string[] {
  return result.lines.filter((line) => pattern.test(line));
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

describe('the sample order service', () => {
  test('`npm run sample` compensates each bad order once (a late payment too), leaves the good ones alone, and cleans up', async () => {
    const result = await run('npm', ['run', 'sample'], process.env, 120_000);
    expect({ code: result.code, output: result.output }).toMatchObject({ code: 0 });

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

    // The run's keys (queues and FlowFailureModule's) are gone from the shared Redis.
    const prefix = /key prefix (sample-\w+)/.exec(result.output)?.[1];
    expect(prefix).toBeDefined();
    expect(await keysWithPrefix(prefix as string)).toEqual([]);
  }, 150_000);

  // The two tests below run the sample compiled by the first one.

  (hasRedisServerBinary() ? test : test.skip)('starts a redis-server of its own when none answers, and stops it after', async () => {
    const { port, release } = await holdPort();
    const env = { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}` };
    // Until lib's fix: on a Redis up for less than leaseMs (30 s), the settled compensation of
    // order 6 waits for that (its parked claim is resumed by the take-over, held on a fresh Redis).
    const result = await run(process.execPath, [COMPILED_SAMPLE], env, 90_000).finally(release);
    expect({ code: result.code, output: result.output }).toMatchObject({ code: 0 });
    expect(result.output).toMatch(/^Redis 127\.0\.0\.1:\d+ \(started for this run\)/m);
    expect(result.output).toMatch(/^summary: .*each handled once/m);
    const started = Number(/^Redis 127\.0\.0\.1:(\d+)/m.exec(result.output)?.[1]);
    expect(await redisAnswers('127.0.0.1', started)).toBe(false);
  }, 90_000);

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
