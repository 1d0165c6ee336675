/**
 * Every copy of this package loaded in the process (its ESM and CommonJS builds are two, when
 * an app both imports and requires it), counted in one registry under a global symbol. The
 * decorators' metadata is keyed by a string (FLOW_FAILURE_HANDLER_METADATA), so it is shared
 * by every copy; classes are not: FlowFailureService of one copy is not the other's DI token.
 */
const REGISTRY = Symbol.for('nestjs-flow-failure:loaded-copies');

const registry = globalThis as typeof globalThis & { [REGISTRY]?: Set<object> };
const copies = (registry[REGISTRY] ??= new Set<object>());
copies.add({});

export function loadedCopies(): number {
  return copies.size;
}
