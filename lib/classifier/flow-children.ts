import type { LuaScripts } from '../claims/lua-scripts.js';
import type { ChildRef, FlowChildren } from '../interfaces/failure-events.interface.js';
import type { RedisKeys } from '../redis/redis-keys.js';

/** Children read per group: a parent with more is described by the first ones (`truncated`). */
export const CHILDREN_PER_GROUP = 1000;

/** What a parent's children are: read with children-1.lua, or with the stream's read script. */
export class FlowChildrenReader {
  constructor(
    private readonly scripts: LuaScripts,
    private readonly keys: RedisKeys,
  ) {}

  async read(parentKey: string): Promise<FlowChildren> {
    return this.decode((await this.scripts.run('children', [parentKey], [CHILDREN_PER_GROUP])) as unknown[]);
  }

  /** Of these parents, which have no pending child any more, and Redis's time (ms). */
  async settled(parentKeys: readonly string[]): Promise<{ now: number; settled: boolean[] }> {
    const [now, ...flags] = (await this.scripts.run('settled', parentKeys, [])) as number[];
    return { now: Number(now), settled: flags.map((flag) => Number(flag) === 1) };
  }

  /** childrenOf's flat list (see children-of.lua) as `FlowChildren`. */
  decode(flat: readonly unknown[]): FlowChildren {
    const children: FlowChildren = { completed: [], failed: [], ignored: [], pending: [], truncated: Number(flat[0]) === 1 };
    for (let i = 1; i + 3 < flat.length; i += 4) {
      const key = String(flat[i + 1]);
      const parsed = this.keys.parseJobKey(key);
      const name = String(flat[i + 2]);
      const value = String(flat[i + 3]);
      const ref: ChildRef = { queueName: parsed?.queueName ?? '', jobId: parsed?.jobId ?? key, key };
      if (name !== '') ref.jobName = name;
      switch (flat[i]) {
        case 'c':
          children.completed.push({ ...ref, returnValue: parseReturnValue(value) });
          break;
        case 'f':
          children.failed.push({ ...ref, failedReason: value });
          break;
        case 'i':
          children.ignored.push({ ...ref, failedReason: value });
          break;
        default:
          children.pending.push(ref);
      }
    }
    return children;
  }
}

/** Whether the decoded children say the job had any (BullMQ's bookkeeping of children exists). */
export function hasChildren(children: FlowChildren): boolean {
  return children.completed.length + children.failed.length + children.ignored.length + children.pending.length > 0;
}

/** BullMQ stores return values as JSON; one that does not parse is given as stored. */
function parseReturnValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
