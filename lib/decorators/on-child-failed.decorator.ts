import type { OnChildFailedOptions, QueueNames } from '../interfaces/handler-options.interface.js';
import { addHandlerMetadata } from './handler-metadata.js';

/**
 * Runs the method once per terminal failure (after all attempts) of a job that has a
 * parent, whatever the child's options do to that parent. The method receives a `ChildFailedEvent`.
 */
export function OnChildFailed(queueOrOptions?: QueueNames | OnChildFailedOptions): MethodDecorator {
  return addHandlerMetadata({ kind: 'child-failed', decorator: '@OnChildFailed', argument: queueOrOptions });
}
