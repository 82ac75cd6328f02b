import { execFileSync, spawnSync } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { missingTools, projectDir, ROOT, TSC_50 } from './tools.js';

const skipTs50 = missingTools() !== undefined;

describe('batchpipe from CommonJS and from a tslab cell', () => {
  it('loads with require() in a CommonJS project, subpaths too (no top-level await anywhere)', () => {
    const dir = projectDir('commonjs');
    const script = `
      const b = require('batchpipe');
      const runs = require('batchpipe/runs');
      const providers = require('batchpipe/providers');
      console.log(JSON.stringify([typeof b.csvSource, typeof b.show, typeof runs.readManifest, Object.keys(providers.PROFILES).length > 0]));`;
    const out = execFileSync('node', ['-e', script], { cwd: dir, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(['function', 'function', 'function', true]);
  });

  it('loads with import in an ESM project', () => {
    const dir = projectDir('module');
    const out = execFileSync(
      'node',
      ['--input-type=module', '-e', "import { toRequests } from 'batchpipe'; console.log(typeof toRequests)"],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(out.trim()).toBe('function');
  });

  // tslab compiles cells with its own TypeScript 5.0, resolving modules the Node 10 way (typesVersions,
  // not exports) and checking against lib es2022 on Node 18+.
  const TSLAB_FLAGS = [
    '--noEmit',
    '--module',
    'esnext',
    '--moduleResolution',
    'node10',
    '--target',
    'es2022',
  ];
  const tsc50 = (dir: string, file: string, extra: string[]) =>
    spawnSync(
      'node',
      [TSC_50, ...TSLAB_FLAGS, '--lib', 'es2022', '--esModuleInterop', '--types', 'node', ...extra, file],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );

  it.skipIf(skipTs50)('gives TypeScript 5.0 (tslab) types without errors in its declarations', () => {
    const dir = projectDir('commonjs');
    symlinkSync(join(ROOT, 'node_modules', '@types'), join(dir, 'node_modules', '@types'));
    writeFileSync(
      join(dir, 'cell.ts'),
      `import { csvSource, joinResults, resolveConnection, runTable, show, toRequests, type JoinedRow } from 'batchpipe';
import { readManifest } from 'batchpipe/runs';
import { PROFILES } from 'batchpipe/providers';
const rows = csvSource('reviews.csv');
const requests = toRequests({ model: 'qwen-plus', template: 'Classify: {{review}}', idColumn: 'id' });
const first = (row: JoinedRow): unknown => row.values.status;
void [rows, requests, first, joinResults, resolveConnection, runTable, show, readManifest, PROFILES];
`,
    );
    // Without skipLibCheck (tslab skips it): our declarations must hold under 5.0 themselves. zod's own
    // declarations use a 5.4 type (NoInfer); those errors are zod's and tslab never reports them.
    const checked = tsc50(dir, 'cell.ts', []);
    const ours = checked.stdout
      .split('\n')
      .filter((line) => line.includes('error TS') && !line.includes('node_modules/'));
    expect(ours).toEqual([]);

    // The types are real, not any: a wrong option is an error in the cell.
    writeFileSync(
      join(dir, 'wrong.ts'),
      "import { csvSink } from 'batchpipe';\ncsvSink('out.csv', { header: 'yes' });\n",
    );
    const wrong = tsc50(dir, 'wrong.ts', ['--skipLibCheck']);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stdout).toMatch(
      /wrong\.ts\(2,\d+\): error TS2322: Type 'string' is not assignable to type 'boolean'/,
    );
  });
});
