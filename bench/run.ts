import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Bench, printTable, Scale, writeResults } from './harness';

/**
 * npm run bench -- <name> [--scale small|full]
 * Each benchmark is bench/<name>.ts exporting `bench: Bench`. It prints a table and writes
 * bench/results/<name>.json with each metric, its baseline and their ratio.
 */
async function main() {
  const args = process.argv.slice(2);
  const name = args.find((a) => !a.startsWith('--'));
  const scaleArg = args.includes('--scale') ? args[args.indexOf('--scale') + 1] : 'full';
  if (!name || !/^[a-z][a-z0-9-]*$/.test(name) || !existsSync(join(__dirname, `${name}.ts`))) {
    process.stderr.write('usage: npm run bench -- <name> [--scale small|full]\n');
    process.exit(2);
  }
  if (scaleArg !== 'small' && scaleArg !== 'full') {
    process.stderr.write('--scale must be small or full\n');
    process.exit(2);
  }
  const scale = scaleArg as Scale;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(`./${name}`) as { bench: Bench };
  const started = Date.now();
  const metrics = await mod.bench.run({ scale, log: (m) => process.stderr.write(`[${name}] ${m}\n`) });
  process.stdout.write(printTable(name, scale, metrics) + '\n');
  const file = writeResults(name, scale, metrics);
  process.stdout.write(`wrote ${file} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
