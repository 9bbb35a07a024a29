import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { consoleDir } from '../../src/console/routes';

const root = resolve(__dirname, '../..');

/** Newest modification time under a directory (the console's sources). */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = resolve(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * The console tests need the built console. CI builds it first (npm run build); a bare `npx jest`
 * may have none, or one older than the sources: then it is built here, so the test never drives a
 * stale page.
 */
export function ensureConsoleBuilt(): string {
  const found = consoleDir();
  const sources = Math.max(newest(resolve(root, 'ui/src')), statSync(resolve(root, 'ui/index.html')).mtimeMs);
  if (found && statSync(resolve(found, 'index.html')).mtimeMs >= sources) return found;
  execFileSync(process.execPath, [resolve(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'ui/vite.config.mjs'], { cwd: root, stdio: 'pipe' });
  const built = consoleDir();
  if (!built) throw new Error('vite build did not produce dist/console/index.html');
  return built;
}
