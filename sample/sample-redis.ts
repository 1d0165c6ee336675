import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export const HOW_TO_GET_REDIS = [
  'The sample needs a Redis server and found none:',
  '  - nothing answered at ' + targetUrl(),
  '  - and there is no redis-server binary on the PATH to start one for the run.',
  'Start one (e.g. `docker run -p 6379:6379 redis:7`, or `redis-server` after `apt install redis-server`',
  'or `brew install redis`), or point REDIS_URL at one: REDIS_URL=redis://host:port npm run sample',
].join('\n');

export interface SampleRedis {
  url: string;
  host: string;
  port: number;
  /** True when this run started its own redis-server (and stops it in `stop()`). */
  startedHere: boolean;
  stop(): Promise<void>;
}

/** REDIS_URL (else 127.0.0.1:6379) when it answers; else a redis-server of our own; else undefined. */
export async function findOrStartRedis(): Promise<SampleRedis | undefined> {
  const url = targetUrl();
  if (await answersPing(url)) return sampleRedis(url, false, async () => {});
  return startRedisServer();
}

/** Only host and port are read: enough for a local sample (no password, no TLS). */
function sampleRedis(url: string, startedHere: boolean, stop: () => Promise<void>): SampleRedis {
  const { hostname, port } = new URL(url);
  return { url, host: hostname, port: Number(port || 6379), startedHere, stop };
}

function targetUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

async function answersPing(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1000, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  redis.on('error', () => {}); // "nothing there" is an answer here, not a crash
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    // Not when already ended: ioredis would then keep the process alive for 2 s (disconnectTimeout).
    if (redis.status !== 'end') redis.disconnect();
  }
}

/** A throw-away redis-server on a free port that keeps nothing on disk; undefined when there is no binary. */
async function startRedisServer(): Promise<SampleRedis | undefined> {
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const spawned = await new Promise<boolean>((resolve) => {
    server.once('spawn', () => resolve(true));
    server.once('error', () => resolve(false)); // ENOENT: no redis-server on the PATH
  });
  if (!spawned) return undefined;
  const stop = async () => {
    if (server.exitCode !== null || server.signalCode !== null) return;
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    await exited;
  };
  const url = `redis://127.0.0.1:${port}`;
  for (let tries = 0; !(await answersPing(url)); tries++) {
    if (tries === 100 || server.exitCode !== null) {
      await stop();
      throw new Error(`redis-server did not start on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return sampleRedis(url, true, stop);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
