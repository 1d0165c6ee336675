#!/usr/bin/env node
// Runs the compatibility matrix (compat/matrix.mjs): `npm run test:compat [-- <row> ...]`.
// Each row installs into its own folder under compat/.work/ (git- and lint-ignored); the
// repository's own node_modules is only read. Prints each row's wall time; exits 1 when
// any row failed, with the end of that row's log.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { CORE_SPECS, ROWS, TOOLCHAIN } from './matrix.mjs';
import { redisAnswers, startRedisServer } from '../test/support/redis-server.mjs';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const WORK = join(REPO, 'compat', '.work');
const NPM_INSTALL = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', '--loglevel=error'];

/** Runs a command, its output appended to the row's log; rejects naming it when it fails. */
function run(log, cwd, command, args, env = {}) {
  log.write(`\n$ (${cwd.replace(REPO, '.')}) ${command} ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited with ${code}`))));
  });
}

/** A fresh folder for a row (what a previous run left is removed first). */
function freshDir(name) {
  const dir = join(WORK, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** REDIS_URL, else 127.0.0.1:6379, else a redis-server of our own (as the test suite's global setup does). */
async function redisServer() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => undefined };
  if (await redisAnswers('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', stop: async () => undefined };
  return startRedisServer();
}

/** Deletes the keys a fixture app left under its prefix. */
async function deletePrefix(url, prefix) {
  const redis = new Redis(url);
  try {
    const stream = redis.scanStream({ match: `${prefix}:*`, count: 1000 });
    for await (const keys of stream) if (keys.length > 0) await redis.unlink(...keys);
  } finally {
    redis.disconnect();
  }
}

let tarball;
/** The package as npm would publish it, packed once per run. */
async function packed(log) {
  if (tarball) return tarball;
  const dir = join(WORK, 'pack');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await run(log, REPO, 'npm', ['run', 'build']);
  const out = spawnSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: REPO, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`npm pack failed: ${out.stderr}`);
  tarball = join(dir, JSON.parse(out.stdout)[0].filename);
  return tarball;
}

const ROW_RUNNERS = {
  async package(row, log, redis) {
    await run(log, REPO, 'npm', ['run', 'check:package']);
    await run(log, REPO, process.execPath, ['compat/two-copies.mjs'], { REDIS_URL: redis.url });
  },

  async app(row, log, redis) {
    const pkg = await packed(log);
    const dir = freshDir(row.name);
    cpSync(join(REPO, 'compat', 'fixtures', row.fixture), dir, { recursive: true });
    // What both apps add to what `nest new` generated: the module, a failing flow and its handlers,
    // written as a CommonJS app's files are (extensionless imports); an ES module app names its files.
    for (const file of readdirSync(join(REPO, 'compat', 'fixtures', 'app-src'))) {
      const source = readFileSync(join(REPO, 'compat', 'fixtures', 'app-src', file), 'utf8');
      writeFileSync(join(dir, 'src', file), row.esm ? source.replace(/from '(\.\/[\w.-]+)'/g, "from '$1.js'") : source);
    }
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    manifest.dependencies['nestjs-flow-failure'] = `file:${pkg}`;
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const env = { REDIS_URL: redis.url, FLOW_PREFIX: `compat-${row.name}-${process.pid}` };
    try {
      await run(log, dir, 'npm', NPM_INSTALL);
      await run(log, dir, 'npm', ['run', 'build']);
      await run(log, dir, process.execPath, ['dist/failing-flow.js'], env);
      await run(log, dir, 'npm', ['run', 'test:e2e'], env);
    } finally {
      await deletePrefix(redis.url, env.FLOW_PREFIX);
    }
  },

  async peers(row, log, redis) {
    const dir = freshDir(row.name);
    for (const path of ['lib', 'test/support', ...CORE_SPECS, 'tsconfig.json', 'tsconfig.build.json', 'jest.config.js']) {
      cpSync(join(REPO, path), join(dir, path), { recursive: true });
    }
    const manifest = { name: `compat-${row.name}`, private: true, type: 'module', devDependencies: { ...TOOLCHAIN, ...row.peers } };
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await run(log, dir, 'npm', NPM_INSTALL);
    await run(log, dir, 'npm', ['ls', 'bullmq', 'ioredis', '@nestjs/core']);
    // The source type-checks against these peers (the specs run through ts-jest's transpiler).
    await run(log, dir, process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.build.json']);
    // test/unit's chaos tally belongs to the chaos run, whose files are not copied.
    await run(log, dir, process.execPath, ['node_modules/jest/bin/jest.js', ...CORE_SPECS, '--testPathIgnorePatterns', 'chaos'], {
      NODE_OPTIONS: '--experimental-vm-modules',
      REDIS_URL: redis.url,
    });
  },

  async server(row, log, redis) {
    const valkey = row.server === 'valkey';
    if (valkey) await run(log, REPO, 'bash', ['compat/install-valkey.sh']);
    const own = valkey ? await startRedisServer({ server: 'valkey-server' }) : undefined;
    try {
      const env = {
        NODE_OPTIONS: '--experimental-vm-modules',
        REDIS_URL: own?.url ?? redis.url,
        ...(valkey ? { REDIS_SERVER_BIN: 'valkey-server', REDIS_CLI_BIN: 'valkey-cli' } : {}),
      };
      await run(log, REPO, process.execPath, ['node_modules/jest/bin/jest.js', ...row.specs], env);
    } finally {
      await own?.stop();
    }
  },
};

async function main() {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !ROWS.some((row) => row.name === name));
  if (unknown.length > 0) throw new Error(`unknown row(s) ${unknown.join(', ')}; rows: ${ROWS.map((row) => row.name).join(', ')}`);
  const rows = wanted.length > 0 ? ROWS.filter((row) => wanted.includes(row.name)) : ROWS;
  mkdirSync(WORK, { recursive: true });
  const redis = await redisServer();
  const results = [];
  const started = Date.now();
  try {
    for (const row of rows) {
      const logFile = join(WORK, `${row.name}.log`);
      const log = createWriteStream(logFile);
      const begin = Date.now();
      process.stdout.write(`compat: ${row.name} ... `);
      let error;
      try {
        await ROW_RUNNERS[row.kind](row, log, redis);
      } catch (caught) {
        error = caught;
      }
      await new Promise((resolve) => log.end(resolve));
      const seconds = Math.round((Date.now() - begin) / 1000);
      results.push({ row: row.name, ok: !error, seconds });
      console.log(`${error ? 'FAILED' : 'ok'} (${seconds} s)`);
      if (error) {
        console.log(`${error.message}; the end of ${logFile.replace(REPO, '.')}:`);
        console.log(readFileSync(logFile, 'utf8').split('\n').slice(-60).join('\n'));
      }
    }
  } finally {
    await redis.stop();
  }
  const total = Math.round((Date.now() - started) / 1000);
  writeFileSync(join(WORK, 'results.json'), `${JSON.stringify({ total, results }, null, 2)}\n`);
  console.log(`\ncompat: ${results.filter((r) => r.ok).length}/${results.length} rows passed in ${total} s`);
  for (const { row, ok, seconds } of results) console.log(`  ${ok ? 'ok    ' : 'FAILED'} ${row.padEnd(18)} ${String(seconds).padStart(4)} s`);
  if (results.some((r) => !r.ok)) process.exitCode = 1;
}

if (!existsSync(join(REPO, 'node_modules'))) throw new Error('run npm ci first');
await main();
