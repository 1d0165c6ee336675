/** `nestjs-flow-failure/testing`: unit tests of handlers, without Redis. */
export { FlowFailureTestingModule } from './flow-failure-testing.module.js';
export { FlowFailureTester, type HandlerOutcome } from './flow-failure.tester.js';
export { childFailedEvent, parentFailedEvent } from './events.js';
