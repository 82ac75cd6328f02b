/**
 * Where no WebAssembly memory can be made (a WebAssembly memory reserves ~10 GB of address space,
 * which a tight `ulimit -v` refuses), `prepare` without request keys still works: the lines pool's
 * buffers are then plain shared memory (lines-memory.ts), rendered on the main thread and on a render
 * thread alike, and the request files are the same bytes as without the limit.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RENDER_THREAD_AFTER_ROWS } from '../../src/core/requests/request-maker.js';
import { fileWith, tempDir } from '../helpers.js';
import { CLI, type CliResult, runCli, runProgram } from './run-cli.js';

const dir = tempDir('bp-no-wasm-');
/** KB of address space: Node starts within it, a WebAssembly memory does not fit. */
const LIMIT_KB = 8_000_000;

/** `node ...args` under `ulimit -v LIMIT_KB`. */
function limited(args: string[]): Promise<CliResult> {
  return runProgram('bash', ['-c', `ulimit -v ${LIMIT_KB} && exec "$0" "$@"`, process.execPath, ...args]);
}

const requestFiles = (out: string) =>
  readdirSync(out)
    .filter((f) => /^requests-\d+\.jsonl$/.test(f))
    .sort()
    .map((f) => readFileSync(join(out, f), 'utf8'))
    .join('');

describe('prepare where no WebAssembly memory can be made', () => {
  it('writes the same requests, rendered on both threads', async () => {
    // The limit does what this test needs: no WebAssembly memory, yet Node runs.
    const probe = await limited([
      '-e',
      'try { new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }); console.log("made") } catch { console.log("refused") }',
    ]);
    expect(probe.stdout.trim()).toBe('refused');

    const rows = RENDER_THREAD_AFTER_ROWS + 4000;
    const csv = ['id,text', ...Array.from({ length: rows }, (_, i) => `${i},"text ${i} ""q"" é"`)].join('\n');
    const input = fileWith(dir, 'in.csv', `${csv}\n`);
    const args = (out: string) => [
      'prepare',
      input,
      '--template',
      'Say {{text}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--out',
      out,
    ];
    const plain = join(dir, 'plain');
    const without = join(dir, 'without');
    const free = await runCli(args(plain));
    expect(free.code, free.stderr).toBe(0);
    const bounded = await limited([CLI, ...args(without)]);
    expect(bounded.code, bounded.stderr).toBe(0);
    const written = requestFiles(without);
    expect(written.split('\n').length - 1).toBe(rows);
    expect(written).toBe(requestFiles(plain));
  });
});
