import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './repo-root.js';

export interface MachineInfo {
  date: string;
  cpuModel: string;
  cores: number;
  memoryGb: number;
  /** 1-minute load average when the run started: other work on the machine skews the numbers. */
  loadAverageAtStart: number;
  platform: string;
  node: string;
  redis: string;
  packages: Record<string, string>;
  gitCommit?: string;
  gitDirty?: boolean;
}

export function machineInfo(redisVersion: string): MachineInfo {
  const root = repoRoot();
  const version = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  return {
    date: new Date().toISOString(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    loadAverageAtStart: Number(loadavg()[0].toFixed(2)),
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    redis: redisVersion,
    packages: Object.fromEntries(['bullmq', 'ioredis', '@nestjs/core', '@nestjs/bullmq'].map((name) => [name, version(name)])),
    ...git(root),
  };
}

function git(root: string): { gitCommit?: string; gitDirty?: boolean } {
  try {
    const options = { cwd: root, encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ('ignore' | 'pipe')[] };
    const gitCommit = execFileSync('git', ['rev-parse', 'HEAD'], options).trim();
    const gitDirty = execFileSync('git', ['status', '--porcelain', 'lib'], options).trim() !== '';
    return { gitCommit, gitDirty };
  } catch {
    return {};
  }
}
