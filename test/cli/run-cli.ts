import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built CLI: tests run what users run (`npm test` builds first). */
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Spawns `batchpipe ...args` and collects its output. */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return runNode([CLI, ...args], options);
}

/** Spawns `node ...args` and collects its output, once its pipes have closed. */
export function runNode(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return runProgram(process.execPath, args, options);
}

/** Spawns `program ...args` and collects its output, once its pipes have closed. */
export function runProgram(
  program: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** stderr without the line a run on the local test engine starts with (see TEST_ENGINE_NOTICE). */
export function withoutEngineNotice(stderr: string): string {
  return stderr.replace(/^answers come from batchpipe's local test engine: [^\n]*\n/, '');
}
