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

/** A port the system has just handed out; someone else may take it before it is used (see startRedisServer). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A port that stays ours until released, where no Redis answers: every connection is closed
 * at once. For "Redis unreachable" cases: unlike a port found free and let go, no other test
 * (another Jest worker starting its own redis-server) can take it meanwhile.
 */
export function holdPort() {
  return new Promise((resolve, reject) => {
    const sockets = new Set();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.destroy();
    });
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        release: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

/** The pid of the redis-server answering at 127.0.0.1:port (INFO's process_id), or undefined. */
export function redisPid(port) {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = '';
    const done = (pid) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(1000, () => done(undefined));
    socket.once('error', () => done(undefined));
    socket.once('close', () => done(undefined));
    socket.connect(port, '127.0.0.1', () => socket.write('INFO server\r\n'));
    socket.on('data', (data) => {
      reply += data.toString();
      const match = /process_id:(\d+)\r\n/.exec(reply);
      if (match) done(Number(match[1]));
    });
  });
}

/**
 * A redis-server of our own, on a free port in its own folder, that a test may restart or stop.
 * `server` (else REDIS_SERVER_BIN, else redis-server) names the binary: valkey-server runs one on Valkey.
 * A port found free can be taken by another process before redis-server binds it (another
 * Jest worker starting its own server): the server counts as started only when the one
 * answering on the port is the process started here; otherwise another port is tried.
 */
export async function startRedisServer(options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'flow-failure-redis-'));
  let port = 0;
  let child;
  /** Starts redis-server on `port`; false when it could not have the port (it exited, or another server answers there). */
  const launch = async () => {
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', options.appendOnly ? 'yes' : 'no', ...(options.extraArgs ?? []),
    ];
    const started = spawn(options.server ?? process.env.REDIS_SERVER_BIN ?? 'redis-server', args, { stdio: 'ignore' });
    child = started;
    for (let i = 0; i < 200; i++) {
      if (started.exitCode !== null || started.signalCode !== null) return false;
      const pid = await redisPid(port);
      if (pid === started.pid) return true;
      if (pid !== undefined) break; // another server holds the port
      await new Promise((r) => setTimeout(r, 50));
    }
    started.kill('SIGKILL');
    return false;
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
  for (let tries = 1; ; tries++) {
    port = await freePort();
    if (await launch()) break;
    if (tries === 5) throw new Error(`redis-server did not start on any of 5 free ports (last ${port})`);
  }
  /** The same port again: the clients' URL must not change. Should another process have taken it meanwhile, that is an error, never a silent switch. */
  const relaunch = async () => {
    for (let tries = 1; !(await launch()); tries++) {
      if (tries === 20) throw new Error(`redis-server could not have port ${port} again after a stop: another process holds it`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    // A frozen server keeps its connections open and answers nothing: a network that drops packets.
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    restart: async (downMs = 0) => {
      await halt();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await relaunch();
    },
    stop: async () => {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
