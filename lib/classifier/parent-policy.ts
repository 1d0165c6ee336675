import type { Job } from 'bullmq';
import type { ParentPolicy } from '../interfaces/failure-events.interface.js';

/**
 * What the child's options made BullMQ do with its parent, checked in the order of
 * BullMQ's own script (moveChildFromDependenciesIfNeeded). The flags travel on
 * `job.parent`; the options are read too for jobs stored by older versions.
 */
export function parentPolicyOf(job: Pick<Job, 'parent' | 'opts'>): ParentPolicy {
  const flags = job.parent;
  const opts = job.opts ?? {};
  if (flags?.fpof || opts.failParentOnFailure) return 'fail';
  if (flags?.cpof || opts.continueParentOnFailure) return 'continue';
  if (flags?.idof || opts.ignoreDependencyOnFailure) return 'ignore';
  if (flags?.rdof || opts.removeDependencyOnFailure) return 'remove';
  return 'wait';
}
