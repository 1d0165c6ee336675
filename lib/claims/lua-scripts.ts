import type { Cluster, Redis } from 'ioredis';
import childrenOf from './lua/includes/children-of.lua';
import claimOccurrence from './lua/includes/claim-occurrence.lua';
import formats from './lua/includes/formats.lua';
import keepOccurrence from './lua/includes/keep-occurrence.lua';
import now from './lua/includes/now.lua';
import serverRunId from './lua/includes/server-run-id.lua';
import children from './lua/children-1.lua';
import claim from './lua/claim.lua';
import discard from './lua/discard-1.lua';
import dropLease from './lua/drop-lease-2.lua';
import expiredLeases from './lua/expired-leases-1.lua';
import lease from './lua/lease.lua';
import park from './lua/park.lua';
import readAndClaim from './lua/read-and-claim.lua';
import recorded from './lua/recorded.lua';
import releaseLock from './lua/release-lock-1.lua';
import releaseUnwanted from './lua/release-unwanted.lua';
import reserve from './lua/reserve-2.lua';
import runId from './lua/run-id-1.lua';
import settle from './lua/settle.lua';
import settled from './lua/settled.lua';

/** The parts scripts pull in with `--- @include "<name>"`. */
const INCLUDES: Readonly<Record<string, string>> = {
  'includes/now': now,
  'includes/formats': formats,
  'includes/server-run-id': serverRunId,
  'includes/claim-occurrence': claimOccurrence,
  'includes/keep-occurrence': keepOccurrence,
  'includes/children-of': childrenOf,
};

/**
 * Every script of the module. `keys` is the fixed number of keys a script takes (its file
 * name's `-<n>` suffix); absent, it takes any number. `immediate` scripts skip the
 * auto-pipeline: they are sent at once, not held for its next flush (a setImmediate, after
 * whatever I/O the Workers queued), because a reservation must be in before its job fails
 * and a claim is the round trip between a failure and its handler.
 */
const SCRIPTS = {
  claim: { source: claim, immediate: true },
  reserve: { source: reserve, keys: 2, immediate: true },
  settle: { source: settle },
  releaseUnwanted: { source: releaseUnwanted },
  discard: { source: discard, keys: 1 },
  lease: { source: lease },
  dropLease: { source: dropLease, keys: 2 },
  expiredLeases: { source: expiredLeases, keys: 1 },
  recorded: { source: recorded },
  releaseLock: { source: releaseLock, keys: 1 },
  readAndClaim: { source: readAndClaim },
  park: { source: park },
  children: { source: children, keys: 1 },
  settled: { source: settled },
  runId: { source: runId, keys: 1 },
} satisfies Record<string, { source: string; keys?: number; immediate?: boolean }>;

export type ScriptName = keyof typeof SCRIPTS;
export type ScriptArg = string | number;

type Command = (...args: ScriptArg[]) => Promise<unknown>;

const INCLUDE = /^--- @include "([^"]+)"$/gm;

/** A script's text with its includes pulled in, each once, in the order they are named. */
export function expandIncludes(source: string, included = new Set<string>()): string {
  return source.replace(INCLUDE, (_line, name: string) => {
    const part = INCLUDES[name];
    if (part === undefined) throw new Error(`Lua include "${name}" does not exist`);
    if (included.has(name)) return '';
    included.add(name);
    return expandIncludes(part, included);
  });
}

/**
 * The one way the module runs its Lua: each script defined once per connection (ioredis
 * sends EVALSHA, and the script's text only when Redis does not know it yet), called by
 * name with its keys and arguments.
 */
export class LuaScripts {
  private readonly commands = new Map<ScriptName, Command>();

  constructor(redis: Redis | Cluster) {
    const immediate: string[] = [];
    for (const [name, script] of Object.entries(SCRIPTS) as [ScriptName, (typeof SCRIPTS)[ScriptName]][]) {
      const command = `flowFailure${name[0].toUpperCase()}${name.slice(1)}`;
      redis.defineCommand(command, { lua: expandIncludes(script.source) });
      if ('immediate' in script && script.immediate) immediate.push(command);
      const defined = (redis as unknown as Record<string, Command>)[command];
      this.commands.set(name, (...args) => defined.apply(redis, args));
    }
    redis.options.autoPipeliningIgnoredCommands = [...(redis.options.autoPipeliningIgnoredCommands ?? []), ...immediate];
  }

  run(name: ScriptName, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown> {
    const fixed = (SCRIPTS[name] as { keys?: number }).keys;
    if (fixed !== undefined && keys.length !== fixed) {
      return Promise.reject(new Error(`Lua script ${name} takes ${fixed} keys, got ${keys.length}`));
    }
    try {
      return (this.commands.get(name) as Command)(keys.length, ...keys, ...args);
    } catch (error) {
      // ioredis throws (rather than rejects) on some bad input: still the caller's error, never an uncaught one.
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
