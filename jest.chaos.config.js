import base from './jest.config.js';

/** The chaos runs: app processes killed, Redis restarted. Serial, and each bounded in time. */
export default {
  ...base,
  testMatch: ['**/*.chaos-spec.ts'],
  maxWorkers: 1,
  testTimeout: 180_000,
};
