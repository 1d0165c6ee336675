// Plain JavaScript so Jest's globalSetup (loaded by Node, outside Jest's transform) and the
// TypeScript tests share one way of finding and starting Redis. Types: redis-server.d.mts.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_HELP =
  'These tests need Redis 7. Start one on 127.0.0.1:6379 (e.g. `redis-server --daemonize yes`), ' +
  'set REDIS_URL=redis://host:port, or install the redis-server binary so the tests can start their own.';

export function hasRedisServerBinary() {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** True when something answers PING at host:port within a second. */
export function redisAnswers(host, port) {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server of our own, on a free port in its own folder, that a test may restart or stop. */
export async function startRedisServer(options = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'flow-failure-redis-'));
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', options.appendOnly ? 'yes' : 'no', ...(options.extraArgs ?? []),
  ];
  let child;
  const launch = async () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    for (let i = 0; i < 200; i++) {
      if (await redisAnswers('127.0.0.1', port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not start on port ${port}`);
  };
  const halt = async () => {
    const running = child;
    if (!running || running.exitCode !== null || (running.signalCode !== null && running.signalCode !== 'SIGSTOP' && running.signalCode !== 'SIGCONT')) return;
    running.kill('SIGCONT');
    await new Promise((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGTERM'); // graceful: Redis fsyncs its AOF before it exits
    });
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    // A frozen server keeps its connections open and answers nothing: a network that drops packets.
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    restart: async () => {
      await halt();
      await launch();
    },
    stop: async () => {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
