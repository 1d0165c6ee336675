import type { Job, ParentKeys } from 'bullmq';
import type { ParentPolicy } from '../interfaces/failure-events.interface.js';

/**
 * What the child's options made BullMQ do with its parent, checked in the order of
 * BullMQ's own script (moveChildFromDependenciesIfNeeded). The flags travel on
 * `job.parent`; the options are read too for jobs stored by older versions.
 */
/** The flags as bullmq 6 types them; bullmq 5's ParentKeys leaves them out, though 5.49.2 already writes them. */
interface ParentFlags {
  fpof?: boolean;
  cpof?: boolean;
  idof?: boolean;
  rdof?: boolean;
}

export function parentPolicyOf(job: Pick<Job, 'parent' | 'opts'>): ParentPolicy {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- needed with bullmq 5's types
  const flags = job.parent as (ParentKeys & ParentFlags) | undefined;
  const opts = job.opts ?? {};
  if (flags?.fpof || opts.failParentOnFailure) return 'fail';
  if (flags?.cpof || opts.continueParentOnFailure) return 'continue';
  if (flags?.idof || opts.ignoreDependencyOnFailure) return 'ignore';
  if (flags?.rdof || opts.removeDependencyOnFailure) return 'remove';
  return 'wait';
}
