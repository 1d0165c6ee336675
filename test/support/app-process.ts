import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * An app in a process of its own, started from compiled JavaScript (Nest's DI needs tsc's
 * decorator metadata): for SIGKILLs, stalls (SIGSTOP) and a module resolution of its own.
 */
export class AppProcess {
  /** Everything it wrote, stdout and stderr. */
  output = '';

  private constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (data: Buffer) => (this.output += data.toString()));
    child.stderr?.on('data', (data: Buffer) => (this.output += data.toString()));
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts `entry` with node and resolves once it printed `ready` (its `app.init()` resolved). */
  static start(entry: string, env: NodeJS.ProcessEnv, readyWithinMs = 30_000): Promise<AppProcess> {
    const app = new AppProcess(spawn(process.execPath, [entry], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        app.child.kill('SIGKILL');
        reject(new Error(`app ${app.pid} did not start in ${readyWithinMs} ms:\n${app.output}`));
      }, readyWithinMs);
      app.child.stdout?.on('data', () => {
        if (!/^ready$/m.test(app.output)) return;
        clearTimeout(timer);
        resolve(app);
      });
      app.child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`app ${app.pid} exited with ${code} before it was ready:\n${app.output}`));
      });
    });
  }

  /** Its log lines (`[level] message`) of that level that match. */
  logged(level: string, pattern: RegExp): string[] {
    return this.output.split('\n').filter((line) => line.startsWith(`[${level}] `) && pattern.test(line));
  }

  /** Stalls it (SIGSTOP): nothing of it runs, its sockets stay open. */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** SIGKILL: a crash. Resolves once it is gone. */
  kill(): Promise<void> {
    return this.signalAndWait('SIGKILL');
  }

  /** SIGTERM: it closes its app (app.close()) and exits; SIGKILLed if it has not after 20 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.resume(); // a stalled process cannot close
    const force = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await this.signalAndWait('SIGTERM');
    clearTimeout(force);
  }

  close(): Promise<void> {
    return this.stop();
  }

  private signalAndWait(signal: NodeJS.Signals): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill(signal);
    });
  }
}

/**
 * Compiles test/support/process-app into a folder of its own outside the
 * repository, whose node_modules holds every installed package but @nestjs/bullmq: the
 * process app runs as in a project without it, which the module must allow.
 * @returns the entry to start, and what removes the folder
 */
export async function compileProcessApp(): Promise<{ entry: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'flow-failure-app-'));
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  // Types are the typecheck's job; this only emits (with the decorator metadata).
  await promisify(execFile)(process.execPath, [tsc, '-p', 'test/support/process-app/tsconfig.json', '--noCheck', '--outDir', dir], { cwd: REPO });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  const installed = join(REPO, 'node_modules');
  const modules = join(dir, 'node_modules');
  mkdirSync(join(modules, '@nestjs'), { recursive: true });
  for (const name of readdirSync(installed)) {
    if (name === '.bin' || name === '@nestjs') continue;
    symlinkSync(join(installed, name), join(modules, name));
  }
  for (const name of readdirSync(join(installed, '@nestjs'))) {
    if (name !== 'bullmq') symlinkSync(join(installed, '@nestjs', name), join(modules, '@nestjs', name));
  }
  // The module as an installed package: the repository, whose "exports" lead to the build in dist/.
  symlinkSync(REPO, join(modules, 'nestjs-flow-failure'));
  return { entry: join(dir, 'test', 'support', 'process-app', 'app.js'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
