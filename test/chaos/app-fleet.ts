import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LiveSource } from '../../lib/index.js';
import { CHAOS_QUEUES } from './chaos-flows.js';

const APP_ENTRY = fileURLToPath(new URL('./dist/test/chaos/chaos-app.js', import.meta.url));

/** The chaos app processes: started, SIGKILLed at random, stopped gracefully at the end. */
export class AppFleet {
  /** Everything the apps wrote, for checking their warnings. */
  output = '';
  kills = 0;
  gracefulStops = 0;
  private readonly apps = new Set<ChildProcess>();

  constructor(
    private readonly redisUrl: string,
    private readonly prefix: string,
    /** The module's live sources in every app; the default ones when undefined. */
    private readonly sources?: readonly LiveSource[],
  ) {}

  get size(): number {
    return this.apps.size;
  }

  /** Starts one app and resolves when its `app.init()` has resolved. */
  start(): Promise<void> {
    const child = spawn(process.execPath, [APP_ENTRY], {
      env: {
        ...process.env,
        REDIS_URL: this.redisUrl,
        CHAOS_PREFIX: this.prefix,
        CHAOS_QUEUES: CHAOS_QUEUES.join(','),
        CHAOS_SOURCES: this.sources?.join(',') ?? '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.apps.add(child);
    child.once('exit', () => this.apps.delete(child));
    child.stderr?.on('data', (data: Buffer) => (this.output += data.toString()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`app ${child.pid} did not start in 30 s:\n${this.output}`)), 30_000);
      child.stdout?.on('data', (data: Buffer) => {
        this.output += data.toString();
        if (data.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`app ${child.pid} exited with ${code} before it was ready:\n${this.output}`));
      });
    });
  }

  /**
   * SIGKILLs the app with this pid, or a random one when it is not one of ours, and
   * resolves once it is dead, with its pid and when the signal was sent.
   */
  async kill(pid?: number): Promise<{ pid: number; at: number } | undefined> {
    const apps = [...this.apps];
    const victim = apps.find((app) => app.pid === pid) ?? apps[Math.floor(Math.random() * apps.length)];
    if (!victim?.pid) return undefined;
    this.kills++;
    const at = Date.now();
    await new Promise<void>((resolve) => {
      victim.once('exit', () => resolve());
      victim.kill('SIGKILL');
    });
    return { pid: victim.pid, at };
  }

  /** A rolling restart's step: the oldest app closes itself (SIGTERM: app.close()) and exits. */
  async stopOldest(): Promise<void> {
    const [oldest] = this.apps;
    if (oldest) await this.terminate(oldest);
    this.gracefulStops++;
  }

  /** SIGTERM: each app closes itself (app.close()) and exits. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.apps].map((app) => this.terminate(app)));
  }

  private terminate(app: ChildProcess): Promise<void> {
    return new Promise<void>((resolve) => {
      if (app.exitCode !== null) return resolve();
      const force = setTimeout(() => app.kill('SIGKILL'), 20_000);
      app.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      app.kill('SIGTERM');
    });
  }
}
