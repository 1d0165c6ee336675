import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file whose package.json is this package's. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'nestjs-flow-failure') {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('bench: cannot find the repository root (package.json of nestjs-flow-failure)');
    dir = parent;
  }
}

/** The compiled bench's own folder (bench/dist/bench), where the app process entry lives. */
export function benchDistDir(): string {
  return dirname(dirname(fileURLToPath(import.meta.url)));
}
