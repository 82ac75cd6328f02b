import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** The runtime exports of src/index.ts, sorted. */
const PUBLIC_EXPORTS = [
  'BatchpipeError',
  'ENDPOINTS',
  'ERROR_CODES',
  'EXTRA_COLUMNS',
  'MAX_CUSTOM_ID_BYTES',
  'PROFILES',
  'PROVIDER_NAMES',
  'REJECTIONS_FILE',
  'RESULT_STATUSES',
  'SUMMARY_FILE',
  'batchSink',
  'compileTemplate',
  'csvSink',
  'csvSource',
  'customIdFor',
  'defaultProvider',
  'findModel',
  'isBatchpipeError',
  'joinResults',
  'joinTable',
  'jsonlSink',
  'jsonlSource',
  'parseResults',
  'prepare',
  'readManifest',
  'reaskRequest',
  'requestSource',
  'resolveConnection',
  'resolveProfile',
  'resultSource',
  'runResults',
  'runTable',
  'shardRequests',
  'startLocalService',
  'thinksByDefault',
  'toRequests',
  'validateRequestFile',
  'validateRequestFiles',
  'validateRequests',
];

function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path, suffix) : path.endsWith(suffix) ? [path] : [];
  });
}

describe('package', () => {
  it('is an ESM package with a bin, and main/types beside exports (tslab resolves types the old way)', () => {
    expect(pkg).toMatchObject({
      name: 'batchpipe',
      type: 'module',
      main: './dist/index.js',
      types: './dist/index.d.ts',
      bin: { batchpipe: './dist/cli/main.js' },
      exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
    });
    expect(pkg.engines.node).toMatch(/^>=20/);
  });

  it('pins dev dependencies exactly', () => {
    for (const [name, range] of Object.entries<string>(pkg.devDependencies))
      expect(range, name).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('exports exactly the public surface, by name (a change here is an API change: update on purpose)', () => {
    expect('default' in api).toBe(false);
    expect(Object.keys(api).sort()).toEqual(PUBLIC_EXPORTS);
    const exported = new Map(Object.entries(api));
    for (const name of PUBLIC_EXPORTS) expect(exported.get(name), name).toBeDefined();
  });

  it('has no `any` in its published type declarations', () => {
    const dts = filesUnder(join(root, 'dist'), '.d.ts');
    expect(dts.length).toBeGreaterThan(10);
    const offenders = dts.filter((file) =>
      /(:\s*any\b|<any>|\bany\[\]|as any\b)/.test(readFileSync(file, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('keeps internal/ out of the entry point', () => {
    const entry = readFileSync(join(root, 'src/index.ts'), 'utf8');
    expect(entry).not.toMatch(/from '\.\/internal\/(?!warnings\.js)/);
  });
});
