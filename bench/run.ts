/**
 * Runs every benchmark (bench/*.bench.ts), one after another, each in its own process.
 * `npm run bench` builds first; pass a name filter to run some: `npm run bench -- prepare`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR } from './lib.js';

const filter = process.argv[2];
const files = readdirSync(BENCH_DIR)
  .filter((f) => f.endsWith('.bench.ts') && (!filter || f.includes(filter)))
  .sort();
let failed = 0;
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(BENCH_DIR, file), ...process.argv.slice(3)],
    { stdio: 'inherit' },
  );
  if (result.status !== 0) failed++;
}
process.exitCode = failed > 0 ? 1 : 0;
