import { type DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { HandlerExplorer } from './discovery/handler.explorer.js';
import { HandlerMetadataAccessor } from './discovery/handler-metadata.accessor.js';
import { HandlerRegistry } from './discovery/handler.registry.js';
import { FLOW_FAILURE_MODULE_OPTIONS } from './flow-failure.constants.js';
import type {
  FlowFailureModuleAsyncOptions,
  FlowFailureModuleOptions,
} from './interfaces/flow-failure-options.interface.js';
import { FlowFailureRuntime } from './runtime/flow-failure.runtime.js';
import { FlowFailureService } from './service/flow-failure.service.js';

const PROVIDERS: Provider[] = [HandlerMetadataAccessor, HandlerRegistry, HandlerExplorer, FlowFailureRuntime, FlowFailureService];

/**
 * Import once, in the root module. Finds every `@OnParentFailed` / `@OnChildFailed`
 * method of the app and runs it once per failure, across sources and replicas.
 */
@Global()
@Module({})
export class FlowFailureModule {
  static forRoot(options: FlowFailureModuleOptions = {}): DynamicModule {
    return {
      module: FlowFailureModule,
      imports: [DiscoveryModule],
      providers: [{ provide: FLOW_FAILURE_MODULE_OPTIONS, useValue: options }, ...PROVIDERS],
      exports: [FlowFailureService],
    };
  }

  static forRootAsync(options: FlowFailureModuleAsyncOptions): DynamicModule {
    return {
      module: FlowFailureModule,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [
        { provide: FLOW_FAILURE_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        ...PROVIDERS,
      ],
      exports: [FlowFailureService],
    };
  }
}
