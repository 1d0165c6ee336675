/** Jest 30 running the ESM-only NestJS 12 (see ../shared/DESIGN.md, "Toolchain facts"). */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  testTimeout: 60000,
  // `npm run test:cov`: what of lib/ the tests run, as text in the terminal and HTML in coverage/.
  collectCoverageFrom: ['lib/**/*.ts'],
  coverageProvider: 'v8',
  coverageReporters: ['text', 'html'],
  maxWorkers: 2,
};
