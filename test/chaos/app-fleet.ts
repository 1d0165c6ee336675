import { fileURLToPath } from 'node:url';
import type { LiveSource } from 'nestjs-flow-failure';
import { AppProcess } from '../support/app-process.js';
import { CHAOS_QUEUES } from './chaos-flows.js';

const APP_ENTRY = fileURLToPath(new URL('./dist/test/chaos/chaos-app.js', import.meta.url));

/** The chaos app processes: started, SIGKILLed at random, stopped gracefully at the end. */
export class AppFleet {
  kills = 0;
  gracefulStops = 0;
  /** Every app started, for their output; `apps` holds those still running. */
  private readonly started: AppProcess[] = [];
  private readonly apps = new Set<AppProcess>();

  constructor(
    private readonly redisUrl: string,
    private readonly prefix: string,
    /** The module's live sources in every app; the default ones when undefined. */
    private readonly sources?: readonly LiveSource[],
  ) {}

  get size(): number {
    return this.apps.size;
  }

  /** Everything the apps wrote, for checking their warnings. */
  get output(): string {
    return this.started.map((app) => app.output).join('');
  }

  /** Starts one app and resolves when its `app.init()` has resolved. */
  async start(): Promise<void> {
    const app = await this.launch();
    this.started.push(app);
    if (!app.running) return;
    this.apps.add(app);
    app.child.once('exit', () => this.apps.delete(app));
  }

  /**
   * One app process. Started while Redis restarts, it fails its app.init() (the module
   * cannot reach Redis) and exits: started again, as an orchestrator restarts a crashed pod.
   */
  private async launch(tries = 50): Promise<AppProcess> {
    try {
      return await AppProcess.start(APP_ENTRY, {
        REDIS_URL: this.redisUrl,
        CHAOS_PREFIX: this.prefix,
        CHAOS_QUEUES: CHAOS_QUEUES.join(','),
        CHAOS_SOURCES: this.sources?.join(',') ?? '',
      });
    } catch (error) {
      if (tries <= 1 || !/cannot reach Redis/.test(String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
      return this.launch(tries - 1);
    }
  }

  /**
   * SIGKILLs the app with this pid, or a random one when it is not one of ours, and
   * resolves once it is dead, with its pid and when the signal was sent.
   */
  async kill(pid?: number): Promise<{ pid: number; at: number } | undefined> {
    const apps = [...this.apps];
    const victim = apps.find((app) => app.pid === pid) ?? apps[Math.floor(Math.random() * apps.length)];
    if (!victim) return undefined;
    this.kills++;
    const at = Date.now();
    await victim.kill();
    return { pid: victim.pid, at };
  }

  /** A rolling restart's step: the oldest app closes itself (SIGTERM: app.close()) and exits. */
  async stopOldest(): Promise<void> {
    const [oldest] = this.apps;
    if (oldest) await oldest.stop();
    this.gracefulStops++;
  }

  /** SIGTERM: each app closes itself (app.close()) and exits. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.apps].map((app) => app.stop()));
  }
}
