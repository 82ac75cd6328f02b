import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
/** Where `.ci/test-tools` installs tslab (with its TypeScript 5.0), apart from the project's. */
export const TOOLS = join(ROOT, '.ci', 'tools', 'node_modules');
export const TSC_50 = join(TOOLS, '@tslab', 'typescript-for-tslab', 'bin', 'tsc');

/**
 * Why the notebook tools are missing, or undefined when they are there. CI installs them and sets
 * BATCHPIPE_NOTEBOOK_TESTS=require, so there a missing tool fails the test instead of skipping it.
 */
export function missingTools(): string | undefined {
  const missing: string[] = [];
  if (!existsSync(TSC_50)) missing.push('tslab (npm, in .ci/tools)');
  try {
    execFileSync('jupyter-nbconvert', ['--version'], { stdio: 'ignore' });
  } catch {
    missing.push('jupyter-nbconvert (Debian)');
  }
  if (missing.length === 0) return undefined;
  const reason = `${missing.join(' and ')} not installed: run .ci/test-tools`;
  if (process.env.BATCHPIPE_NOTEBOOK_TESTS === 'require') throw new Error(reason);
  console.warn(`skipping notebook tests: ${reason}`);
  return reason;
}

/** A fresh project directory where `batchpipe` resolves to this build, as an installed package would. */
export function projectDir(type: 'module' | 'commonjs'): string {
  const dir = mkdtempSync(join(tmpdir(), 'bp-notebook-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'batchpipe'));
  execFileSync(
    'node',
    ['-e', `fs.writeFileSync('package.json', JSON.stringify({ private: true, type: '${type}' }))`],
    {
      cwd: dir,
    },
  );
  return dir;
}
