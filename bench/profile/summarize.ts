import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The parts of a V8 .cpuprofile this summary reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  /** Busy time (everything but idle), ms. */
  busyMs: number;
  /** Self time by area (this library, bullmq, ioredis, Nest, node internals, GC, ...), ms. */
  byArea: Record<string, number>;
  /** The functions with the most self time. */
  top: { fn: string; where: string; area: string; selfMs: number; share: string }[];
}

/** Where a frame's code lives: the library under test is the built `dist/index.js`. */
function areaOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'gc';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program';
    return 'native';
  }
  if (/\/dist\/index\.c?js$/.test(url) && !url.includes('node_modules/')) return 'lib (this module)';
  if (url.includes('/dist/bench/')) return 'bench';
  if (url.includes('node_modules/bullmq/')) return 'bullmq';
  if (url.includes('node_modules/ioredis/') || url.includes('node_modules/@ioredis/')) return 'ioredis';
  if (url.includes('node_modules/@nestjs/')) return 'nestjs';
  if (url.includes('node_modules/msgpackr') ) return 'msgpackr';
  if (url.startsWith('node:')) return 'node';
  if (url.includes('node_modules/')) return `npm:${url.split('node_modules/')[1].split('/')[0]}`;
  return 'other';
}

export function summarizeProfile(file: string, topCount = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const selfUs = new Map<number, number>();
  profile.samples.forEach((nodeId, i) => selfUs.set(nodeId, (selfUs.get(nodeId) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const byArea: Record<string, number> = {};
  const byFunction = new Map<string, { fn: string; where: string; area: string; us: number }>();
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const area = areaOf(url, functionName);
    byArea[area] = (byArea[area] ?? 0) + us / 1000;
    const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${functionName}@${where}`;
    const entry = byFunction.get(key) ?? { fn: functionName || '(anonymous)', where, area, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
  }
  const busyMs = Object.entries(byArea).filter(([area]) => area !== 'idle').reduce((sum, [, ms]) => sum + ms, 0);
  const top = [...byFunction.values()]
    .filter((entry) => entry.area !== 'idle')
    .sort((a, b) => b.us - a.us)
    .slice(0, topCount)
    .map((entry) => ({ fn: entry.fn, where: entry.where, area: entry.area, selfMs: Math.round(entry.us / 1000), share: `${((entry.us / 1000 / busyMs) * 100).toFixed(1)}%` }));
  const rounded = Object.fromEntries(Object.entries(byArea).sort((a, b) => b[1] - a[1]).map(([area, ms]) => [area, Math.round(ms)]));
  return { file, busyMs: Math.round(busyMs), byArea: rounded, top };
}

export function summarizeProfiles(dir: string): ProfileSummary[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'));
  } catch {
    return [];
  }
  return files.sort().map((name) => summarizeProfile(join(dir, name)));
}

// `node bench/dist/bench/profile/summarize.js <file.cpuprofile|dir>...` prints the summaries.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const target of process.argv.slice(2)) {
    const summaries = target.endsWith('.cpuprofile') ? [summarizeProfile(target)] : summarizeProfiles(target);
    for (const summary of summaries) {
      console.log(`\n${summary.file}: busy ${summary.busyMs} ms`);
      console.log(`  by area (ms): ${Object.entries(summary.byArea).map(([area, ms]) => `${area} ${ms}`).join(', ')}`);
      for (const entry of summary.top) console.log(`  ${entry.share.padStart(6)} ${String(entry.selfMs).padStart(6)} ms  ${entry.area.padEnd(18)} ${entry.fn}  ${entry.where}`);
    }
  }
}
