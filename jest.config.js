/** Jest 30 running the ESM-only NestJS 12 (see ../shared/DESIGN.md, "Toolchain facts"). */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
    // The Lua scripts are imported as text, as the build's text loader does.
    '^.+\\.lua$': '<rootDir>/test/support/lua-transform.cjs',
  },
  // Tests import the package by its name, as users do; here it is the source.
  moduleNameMapper: {
    '^nestjs-flow-failure$': '<rootDir>/lib/index.ts',
    '^nestjs-flow-failure/(testing|terminus)$': '<rootDir>/lib/$1/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  testTimeout: 60000,
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json', 'lua'],
  // `npm run test:cov`: what of lib/ the tests run, as text in the terminal and HTML in coverage/.
  collectCoverageFrom: ['lib/**/*.ts'],
  coverageProvider: 'v8',
  coverageReporters: ['text', 'html'],
  maxWorkers: 2,
};
