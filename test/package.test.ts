import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import * as providers from '../src/providers/index.js';
import * as runs from '../src/run/index.js';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** The runtime exports of src/index.ts, sorted: what a pipeline or a notebook uses. */
const PUBLIC_EXPORTS = [
  'BatchpipeError',
  'ERROR_CODES',
  'EXTRA_COLUMNS',
  'MAX_CUSTOM_ID_BYTES',
  'MAX_CUSTOM_ID_CHARS',
  'RESULT_STATUSES',
  'arrowSink',
  'arrowSource',
  'batchSink',
  'cacheStats',
  'chatSink',
  'csvSink',
  'csvSource',
  'customIdFor',
  'estimateTable',
  'evaluate',
  'evaluationPage',
  'isBatchpipeError',
  'joinResults',
  'joinTable',
  'jsonlSink',
  'jsonlSource',
  'mapRows',
  'parquetSink',
  'parquetSource',
  'parsePriceTable',
  'parseResults',
  'prepare',
  'pruneCache',
  'readPriceTable',
  'requestSource',
  'resolveConnection',
  'resultSource',
  'runTable',
  'shardRequests',
  'shippedPrices',
  'show',
  'showable',
  'sliceOfId',
  'sliceRows',
  'startLocalService',
  'toRequests',
  'usageOfFiles',
  'validateRequestFile',
  'validateRequestFiles',
  'validateRequests',
];

/** `batchpipe/runs`: what a run directory holds. */
const RUNS_EXPORTS = [
  'MANIFEST_FILE',
  'REJECTIONS_FILE',
  'RESULTS_FILE',
  'ROW_HASHES_FILE',
  'RUNS_DIR',
  'SUMMARY_FILE',
  'readManifest',
  'runResults',
];

/** `batchpipe/providers`: the providers as data. */
const PROVIDERS_EXPORTS = [
  'ENDPOINTS',
  'PROFILES',
  'PROVIDER_NAMES',
  'defaultProvider',
  'findModel',
  'resolveConnection',
  'resolveProfile',
  'snapshotOf',
  'thinksByDefault',
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
      exports: {
        // `default` lets require() load the ESM build (Node >= 20.19): tslab cells and CommonJS projects.
        '.': { types: './dist/index.d.ts', import: './dist/index.js', default: './dist/index.js' },
        './runs': {
          types: './dist/run/index.d.ts',
          import: './dist/run/index.js',
          default: './dist/run/index.js',
        },
        './providers': {
          types: './dist/providers/index.d.ts',
          import: './dist/providers/index.js',
          default: './dist/providers/index.js',
        },
      },
      // Resolvers that ignore `exports` (tslab's) find the subpaths' types here.
      typesVersions: {
        '*': { runs: ['./dist/run/index.d.ts'], providers: ['./dist/providers/index.d.ts'] },
      },
    });
    expect(pkg.engines.node).toBe('>=20.19');
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

  it('keeps run-directory internals and provider tables behind subpaths', () => {
    expect(Object.keys(runs).sort()).toEqual(RUNS_EXPORTS);
    expect(Object.keys(providers).sort()).toEqual(PROVIDERS_EXPORTS);
  });

  it('has no `any` in its published type declarations', () => {
    const dts = filesUnder(join(root, 'dist'), '.d.ts');
    expect(dts.length).toBeGreaterThan(10);
    const offenders = dts.filter((file) =>
      /(:\s*any\b|<any>|\bany\[\]|as any\b)/.test(readFileSync(file, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('exports nothing from internal/, from any entry point', () => {
    for (const entry of ['src/index.ts', 'src/run/index.ts', 'src/providers/index.ts']) {
      const text = readFileSync(join(root, entry), 'utf8');
      expect(text, entry).not.toMatch(/from '(\.\.?\/)+internal\//);
    }
  });
});
