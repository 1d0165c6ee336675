import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AppSpec, Protocol, ReplyEnvelope, RequestKind } from '../shared/protocol.js';
import { benchDistDir } from './repo-root.js';

export interface LaunchOptions {
  /** Write a V8 CPU profile of the app process here (node --cpu-prof), named after `profileName`. */
  profileDir?: string;
  profileName?: string;
}

/**
 * The bench side of one app process (app/main.ts): forks it, starts the Nest app of a variant
 * in it, and talks to it with typed request/reply messages over IPC (no Redis involved, so the
 * conversation adds nothing to the command counts).
 */
export class AppProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (body: unknown) => void; reject: (error: Error) => void }>();
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly spec: AppSpec,
  ) {
    child.on('message', (message: ReplyEnvelope) => {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (message.ok) waiting.resolve(message.body);
      else waiting.reject(new Error(`app process (${spec.variant}): ${message.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const waiting of this.pending.values()) {
        waiting.reject(new Error(`app process (${spec.variant}) exited (${signal ?? code}) before answering`));
      }
      this.pending.clear();
    });
  }

  /** Forks an app process and starts the app of `spec.variant` in it. */
  static async launch(spec: AppSpec, options: LaunchOptions = {}): Promise<{ app: AppProcess; startedAt: number; readyAt: number; cpuUs: number }> {
    const execArgv = ['--expose-gc'];
    if (options.profileDir) {
      mkdirSync(options.profileDir, { recursive: true });
      execArgv.push('--cpu-prof', '--cpu-prof-dir', options.profileDir, '--cpu-prof-name', `${options.profileName ?? spec.variant}.cpuprofile`);
    }
    const child = fork(join(benchDistDir(), 'app', 'main.js'), [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const app = new AppProcess(child, spec);
    const { startedAt, readyAt, cpuUs } = await app.request('start', spec);
    return { app, startedAt, readyAt, cpuUs };
  }

  request<K extends RequestKind>(kind: K, body: Protocol[K]['request']): Promise<Protocol[K]['reply']> {
    if (this.exited) return Promise.reject(new Error(`app process (${this.spec.variant}) has exited`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (body: unknown) => void, reject });
      this.child.send({ id, kind, body });
    });
  }

  /** Closes the Nest app (its Workers, listeners, module) and waits for the process to exit. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.request('stop', {});
    await exited;
  }

  /** For a bench that is failing anyway: no goodbyes. */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
