import { FLOW_FAILURE_HANDLER_METADATA } from '../flow-failure.constants.js';
import type { FlowFailureEventKind } from '../interfaces/failure-events.interface.js';

/** What a decorator records. Arguments stay raw here and are validated at start-up, where the error can name class and method. */
export interface RawHandlerMetadata {
  kind: FlowFailureEventKind;
  decorator: string;
  argument: unknown;
}

/** Appends rather than replaces, so decorators can stack on one method. */
export function addHandlerMetadata(entry: RawHandlerMetadata): MethodDecorator {
  return (_target, _key, descriptor) => {
    const method = descriptor.value as object;
    const existing = (Reflect.getMetadata(FLOW_FAILURE_HANDLER_METADATA, method) as RawHandlerMetadata[] | undefined) ?? [];
    Reflect.defineMetadata(FLOW_FAILURE_HANDLER_METADATA, [...existing, entry], method);
    return descriptor;
  };
}
