/** `nestjs-flow-failure/terminus`: a health indicator for @nestjs/terminus (an optional peer). */
export { FlowFailureHealthIndicator, type FlowFailureHealthOptions } from './flow-failure.health.js';
