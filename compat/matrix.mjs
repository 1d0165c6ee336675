// The compatibility matrix: what each row installs and runs (compat/run.mjs runs it).
// docs/compatibility.md describes the rows and their measured times.

/**
 * The fast core of the suite a peer row runs: the unit specs, and e2e specs that exercise
 * every source (Worker, stream, sweep), claims and reservations, take-over after a lease,
 * catch-up after a restart, handler retries and dead letters. About 35 s on Redis.
 */
export const CORE_SPECS = [
  'test/unit',
  'test/e2e/what-fires-when.e2e-spec.ts',
  'test/e2e/cascade.e2e-spec.ts',
  'test/e2e/one-level.e2e-spec.ts',
  'test/e2e/sweep.e2e-spec.ts',
  'test/e2e/replicas.e2e-spec.ts',
  'test/e2e/restart.e2e-spec.ts',
  'test/e2e/claim-store.e2e-spec.ts',
  'test/e2e/worker-reservations.e2e-spec.ts',
  'test/e2e/handler-errors.e2e-spec.ts',
];

/** What every peer row installs besides its peers: the test toolchain of the repository. */
const TOOLCHAIN = {
  '@jest/globals': '^30.5.2',
  '@types/node': '^20.19.43',
  jest: '^30.5.2',
  'reflect-metadata': '^0.2.2',
  rxjs: '^7.8.2',
  'ts-jest': '^29.4.15',
  typescript: '^6.0.3',
  '@opentelemetry/api': '^1.9.1',
};

const nest = (range) => ({
  '@nestjs/bullmq': range,
  '@nestjs/common': range,
  '@nestjs/core': range,
  '@nestjs/terminus': range,
  '@nestjs/testing': range,
});

/**
 * kind:
 * - 'package': npm run check:package (publint + attw on the packed package), and both builds loaded in one app;
 * - 'app': an app as `nest new` generates it (compat/fixtures/<fixture>) plus compat/fixtures/app-src
 *   installs the packed tarball, builds with `nest build`, fails a flow (both handlers once), runs its stock e2e;
 * - 'peers': lib/ and the core specs in a folder of their own with these peers: tsc on lib/, then the specs;
 * - 'server': specs of the repository (all of them when `specs` is empty) against another server,
 *   with the repository's own packages, read only.
 */
export const ROWS = [
  { name: 'package', kind: 'package' },
  { name: 'nest11-cjs-app', kind: 'app', fixture: 'nest11-cjs' },
  { name: 'nest12-esm-app', kind: 'app', fixture: 'nest12-esm', esm: true },
  { name: 'oldest-peers', kind: 'peers', peers: { ...nest('^11.0.0'), bullmq: '5.49.2', ioredis: '^5.4.0' } },
  { name: 'bullmq5-newest', kind: 'peers', peers: { ...nest('^11.0.0'), bullmq: '^5.49.2', ioredis: '^6.0.0' } },
  { name: 'bullmq6-ioredis6', kind: 'peers', peers: { ...nest('^12.0.0'), '@nestjs/bullmq': '^12.0.0', bullmq: '^6.0.0', ioredis: '^6.0.0' } },
  // The whole suite, as on Redis: its cluster spec then runs a Valkey cluster too.
  { name: 'valkey', kind: 'server', server: 'valkey', specs: [] },
  { name: 'cluster-redis', kind: 'server', server: 'redis', specs: ['test/e2e/cluster.e2e-spec.ts'] },
];

export { TOOLCHAIN };
