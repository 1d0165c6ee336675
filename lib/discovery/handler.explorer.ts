import { Inject, Injectable, Logger } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { Worker } from 'bullmq';
import { BULLMQ_PROCESSOR_METADATA } from '../flow-failure.constants.js';
import { FlowFailureConfigError } from '../errors/flow-failure-config.error.js';
import { MESSAGES } from '../flow-failure.messages.js';
import type { FlowFailureEvent } from '../interfaces/failure-events.interface.js';
import type { HandlerContext } from '../interfaces/handler-context.interface.js';
import { HandlerMetadataAccessor } from './handler-metadata.accessor.js';
import type { HandlerFilter } from './handler-filter.js';
import { type HandlerBinding, HandlerRegistry } from './handler.registry.js';

interface ProcessorMetadata {
  name?: string;
}

/** Finds the decorated handler methods and the `@nestjs/bullmq` processors of the app. */
@Injectable()
export class HandlerExplorer {
  private readonly logger = new Logger('FlowFailureModule');

  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(HandlerMetadataAccessor) private readonly accessor: HandlerMetadataAccessor,
    @Inject(HandlerRegistry) private readonly registry: HandlerRegistry,
  ) {}

  /** Fills the registry. @throws FlowFailureConfigError on bad decorator input. */
  explore(extraQueues: readonly string[]): HandlerRegistry {
    for (const queue of extraQueues) this.registry.watch(queue);
    const owners = new Map<string, object>();
    for (const wrapper of this.providers()) {
      const instance = wrapper.instance as Record<string, unknown>;
      const processor = this.processorMetadata(wrapper);
      if (processor?.name) this.registry.watch(processor.name);
      const prototype = Object.getPrototypeOf(instance) as object;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        this.exploreMethod(wrapper, instance, methodName, owners);
      }
    }
    return this.registry;
  }

  /** The Workers `@nestjs/bullmq` created for the app's processors (available from `onApplicationBootstrap`). */
  findWorkers(): Worker[] {
    const workers: Worker[] = [];
    for (const wrapper of this.providers()) {
      if (!this.processorMetadata(wrapper)) continue;
      const worker = (wrapper.instance as { _worker?: unknown })._worker;
      if (worker instanceof Worker) workers.push(worker as Worker);
    }
    return workers;
  }

  private exploreMethod(
    wrapper: InstanceWrapper,
    instance: Record<string, unknown>,
    methodName: string,
    owners: Map<string, object>,
  ): void {
    const method = instance[methodName];
    if (typeof method !== 'function') return;
    const raw = this.accessor.getRaw(method);
    if (raw.length === 0) return;
    const className = (instance.constructor as { name: string }).name;
    const name = `${className}.${methodName}`;
    if (!wrapper.isDependencyTreeStatic()) {
      throw new FlowFailureConfigError(
        `${raw[0].decorator} on ${name}: flow failure handlers must live in singleton providers, and ${className} is request or transient scoped`,
      );
    }
    const byKind = new Map<HandlerBinding['kind'], HandlerFilter[]>();
    for (const entry of raw) {
      const filter = this.accessor.toFilter(entry, name);
      byKind.set(entry.kind, [...(byKind.get(entry.kind) ?? []), filter]);
      for (const queue of filter.queueNames ?? []) this.registry.watch(queue);
    }
    for (const [kind, filters] of byKind) {
      const key = `${kind}:${name}`;
      const owner = owners.get(key);
      if (owner && owner !== instance) {
        throw new FlowFailureConfigError(
          `${raw[0].decorator} on ${name}: two providers named ${className} declare this handler; ` +
            'handlers are identified by class and method name, so rename one of the classes',
        );
      }
      owners.set(key, instance);
      this.registry.add({
        key,
        kind,
        name,
        filters,
        invoke: async (event, context) => (method as (e: FlowFailureEvent, c: HandlerContext) => unknown).call(instance, event, context),
      });
      this.logger.log(MESSAGES.mappedHandler(kind, name));
    }
  }

  /** Singleton-or-not providers with an instance, without the aliases `useExisting` creates. */
  private providers(): InstanceWrapper[] {
    return this.discovery
      .getProviders()
      .filter((wrapper) => !wrapper.isAlias && wrapper.instance && typeof wrapper.instance === 'object');
  }

  private processorMetadata(wrapper: InstanceWrapper): ProcessorMetadata | undefined {
    const target = !wrapper.metatype || wrapper.inject ? (wrapper.instance as object).constructor : wrapper.metatype;
    return target ? (Reflect.getMetadata(BULLMQ_PROCESSOR_METADATA, target) as ProcessorMetadata | undefined) : undefined;
  }
}
