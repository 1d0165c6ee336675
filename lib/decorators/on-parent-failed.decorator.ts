import type { OnParentFailedOptions, QueueNames } from '../interfaces/handler-options.interface.js';
import { addHandlerMetadata } from './handler-metadata.js';

/**
 * Runs the method once per terminal failure of a parent job (a job that has or had
 * children), whether a `failParentOnFailure` child failed it or its own processor did.
 * The method receives a `ParentFailedEvent`.
 */
export function OnParentFailed(queueOrOptions?: QueueNames | OnParentFailedOptions): MethodDecorator {
  return addHandlerMetadata({ kind: 'parent-failed', decorator: '@OnParentFailed', argument: queueOrOptions });
}
