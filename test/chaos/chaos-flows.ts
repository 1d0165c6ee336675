import type { FlowJob, JobNode } from 'bullmq';

export const CHAOS_QUEUES = ['c-top', 'c-mid', 'c-leaf'];

/** fail: a failParentOnFailure cascade; ignore / wait: the leaf fails under those policies; ok: nothing fails. */
export type FlowKind = 'fail' | 'ignore' | 'wait' | 'ok';

export function kindOf(index: number): FlowKind {
  return (['fail', 'ignore', 'wait', 'ok'] as const)[index % 4];
}

export function chaosFlow(index: number, kind: FlowKind): FlowJob {
  const retry = { attempts: 2, backoff: { type: 'fixed', delay: 50 } };
  const leafOpts =
    kind === 'fail' ? { ...retry, failParentOnFailure: true } : kind === 'ignore' ? { ...retry, ignoreDependencyOnFailure: true } : retry;
  return {
    name: `top-${index}`,
    queueName: 'c-top',
    data: { sleepMs: 5 },
    children: [
      {
        name: `mid-${index}`,
        queueName: 'c-mid',
        data: { sleepMs: 5 },
        opts: kind === 'fail' ? { failParentOnFailure: true } : {},
        children: [{ name: `leaf-${index}`, queueName: 'c-leaf', data: { sleepMs: 30, fail: kind !== 'ok' }, opts: leafOpts }],
      },
    ],
  };
}

export interface PlacedFlow {
  kind: FlowKind;
  top: string;
  mid: string;
  leaf: string;
}

export function placed(kind: FlowKind, node: JobNode): PlacedFlow {
  const mid = node.children?.[0] as JobNode;
  const leaf = mid.children?.[0] as JobNode;
  return { kind, top: node.job.id as string, mid: mid.job.id as string, leaf: leaf.job.id as string };
}

/** `${handler}|${queue}:${jobId}` for every handler run a flow must cause, exactly once each. */
export function expectedRuns(flow: PlacedFlow): string[] {
  const leaf = `c-leaf:${flow.leaf}`;
  switch (flow.kind) {
    case 'fail':
      return [`child|${leaf}`, `parent|c-mid:${flow.mid}`, `child|c-mid:${flow.mid}`, `parent|c-top:${flow.top}`];
    case 'ignore':
    case 'wait':
      return [`child|${leaf}`];
    case 'ok':
      return [];
  }
}

/** Distinct failures (occurrences) a flow causes: the mid job of a cascade is one failure with two events. */
export function expectedOccurrences(flow: PlacedFlow): number {
  return flow.kind === 'fail' ? 3 : flow.kind === 'ok' ? 0 : 1;
}
