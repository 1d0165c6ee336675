export * from './flow-failure-config.error.js';
export * from './redis-unreachable.error.js';
