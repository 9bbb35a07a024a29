/**
 * Writes the server's OpenAPI document to a file without starting a server: importing the route
 * modules registers their descriptions (describeOperation runs at module load). When the app as a
 * whole does not load (a domain mid-change), each domain's routes are loaded on their own and the
 * ones that fail are named, so the client can still be regenerated for the rest.
 */
import { readdirSync, existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildOpenApi } from '../../src/ops/openapi';

const out = process.argv[2] ?? 'ui/openapi.json';
const src = resolve(__dirname, '../../src');
try {
  require(resolve(src, 'app'));
} catch (err) {
  for (const dir of readdirSync(src)) {
    const file = resolve(src, dir, 'routes.ts');
    if (!existsSync(file)) continue;
    try {
      require(file);
    } catch (e) {
      process.stderr.write(`openapi-dump: skipped ${dir}/routes.ts: ${(e as Error).message.split('\n')[0]}\n`);
    }
  }
  process.stderr.write(`openapi-dump: the app did not load (${(err as Error).message.split('\n')[0]}); wrote what loaded\n`);
}
writeFileSync(out, JSON.stringify(buildOpenApi('http://localhost:3000'), null, 2) + '\n');
