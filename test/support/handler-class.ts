import { Inject, Injectable, Optional, type Type } from '@nestjs/common';
import { OnChildFailed, OnParentFailed, type FlowFailureEvent } from 'nestjs-flow-failure';

/** Which of the two methods are handlers, and with what argument: `true` declares the decorator with none. */
export interface HandlerDecorations {
  parent?: true | Parameters<typeof OnParentFailed>[0];
  child?: true | Parameters<typeof OnChildFailed>[0];
}

const NO_DEPENDENCY = Symbol('no dependency');

/**
 * A provider class `RecordingHandlers` whose methods `parent` and `child` (handler keys
 * `parent-failed:RecordingHandlers.parent`, `child-failed:RecordingHandlers.child`) are
 * decorated as `decorate` says and pass each event to `run`, with the app's instance of
 * `dependency` when one is named. Free of @nestjs/bullmq: the process apps use it too.
 */
export function handlerClass<D = undefined>(
  decorate: HandlerDecorations,
  run: (handler: 'parent' | 'child', event: FlowFailureEvent, dependency: D) => Promise<void>,
  dependency?: Type<D>,
  /** Names the class `<as>Handlers`, so that a second one can live beside the first. */
  as?: string,
): Type {
  @Injectable()
  class RecordingHandlers {
    constructor(@Optional() @Inject(dependency ?? NO_DEPENDENCY) private readonly dependency: D) {}

    parent(event: FlowFailureEvent) {
      return run('parent', event, this.dependency);
    }

    child(event: FlowFailureEvent) {
      return run('child', event, this.dependency);
    }
  }
  const method = (name: 'parent' | 'child') => Object.getOwnPropertyDescriptor(RecordingHandlers.prototype, name) as PropertyDescriptor;
  if (decorate.parent) OnParentFailed(decorate.parent === true ? undefined : decorate.parent)(RecordingHandlers.prototype, 'parent', method('parent'));
  if (decorate.child) OnChildFailed(decorate.child === true ? undefined : decorate.child)(RecordingHandlers.prototype, 'child', method('child'));
  if (as) Object.defineProperty(RecordingHandlers, 'name', { value: `${as}Handlers` });
  return RecordingHandlers;
}
