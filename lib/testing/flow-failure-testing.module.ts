import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { HandlerExplorer } from '../discovery/handler.explorer.js';
import { HandlerMetadataAccessor } from '../discovery/handler-metadata.accessor.js';
import { HandlerRegistry } from '../discovery/handler.registry.js';
import { FlowFailureTester } from './flow-failure.tester.js';

/**
 * For unit tests of handlers: import it instead of `FlowFailureModule` in
 * `Test.createTestingModule()`, and deliver events with `FlowFailureTester`. No Redis,
 * no BullMQ: the handlers' own providers are all it needs.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [HandlerMetadataAccessor, HandlerRegistry, HandlerExplorer, FlowFailureTester],
  exports: [FlowFailureTester],
})
export class FlowFailureTestingModule {}
