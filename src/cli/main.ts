#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=1048576 node --max-semi-space-size=4 --heap-growing-percent=50
// The young generation is capped at 4 MB a semi-space: batchpipe streams, almost nothing it makes
// lives long, and V8's default (16 MB) lets the heap grow 30-40 MB over a long run for no speed. 1 MB
// was smaller still but cost time where a batch's garbage outgrew it (measured at 1M rows, 1 -> 4 MB:
// prepare CSV 3.5 -> 2.8 s, JSON Lines 5.3 -> 3.7 s, join 7.8 -> 6.8 s; peak RSS +5 to +20 MB, still
// flat from 100k to 1M rows).
// The old generation may grow 1.5x between full collections, not V8's up to 4x: what a run keeps for a
// while (a shard's ids, a join partition) dies by the shard, and the default let that garbage pile up
// with the run's length (measured at 1M requests: download 140 -> 95 MB, join 168-186 -> 163-167 MB,
// same speed; prepare unchanged).
// glibc's malloc serves blocks of 1 MiB and more by mmap, so they go back to the system when freed
// (other C libraries ignore the variable). By default glibc raises that threshold up to 32 MiB after
// the first large free, then keeps what it frees in its per-thread heaps: reading Parquet (a row
// group's pages decompressed whole, a thread per row group) left 50-110 MB there. Measured at 1M rows,
// load 9-13: prepare from Parquet 326-340 -> 276 MB, join Parquet into Parquet 620 -> 510 MB and into
// CSV 295 -> 241 MB, prepare from CSV unchanged (135-138 MB); CPU the same, system time +0.1-0.7 s.
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { isBatchpipeError } from '../errors.js';
import { outputError } from '../internal/output-error.js';
import { cliWording } from './cli-wording.js';
import { COMMANDS } from './commands.js';
import { CliExit, EXIT, EXIT_CODES_HELP } from './exit.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** Errors that mean the command line was wrong (exit 2), not the run (exit 1). */
const USAGE_CODES = new Set(['BP_INVALID_OPTION', 'BP_USAGE', 'BP_PRICES_INVALID']);

export async function main(argv: string[]): Promise<number> {
  const program = new Command('batchpipe')
    .description(
      'batch LLM inference over tables: prepare, check, submit and join OpenAI-compatible Batch API jobs',
    )
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const make of COMMANDS)
    program.addCommand(make().addHelpText('after', EXIT_CODES_HELP).exitOverride());
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CliExit) return error.exitCode;
    if (error instanceof CommanderError) {
      // Help and version exit 0; everything else commander refused is a usage error, already printed.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (isBatchpipeError(error)) {
      // In the command line's words, whichever command threw it (inCliWords is idempotent here).
      const command = program.commands.find((c) => c.name() === argv[2]);
      const message = command ? cliWording(command, error.message) : error.message;
      process.stderr.write(`error ${error.code}: ${message}\n`);
      if (process.env.BATCHPIPE_DEBUG) process.stderr.write(`${error.stack}\n`);
      if (error.code === 'BP_COST_LIMIT') return EXIT.costGuard;
      return USAGE_CODES.has(error.code) ? 2 : 1;
    }
    process.stderr.write(`error: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}

/** Set when standard output could not be written: the command's result was lost, so it failed. */
let outputLost = false;
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  // A reader that went away (`| head`) is no failure of ours.
  if (error.code === 'EPIPE') return;
  if (outputLost) return;
  outputLost = true;
  process.exitCode = 1;
  const refused = outputError('standard output', error);
  process.stderr.write(`error ${refused.code}: ${refused.message}\n`);
});

// A closed stderr pipe: nothing more can be said there; the exit code still says how it went.
process.stderr.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

const code = await main(process.argv);
process.exitCode = outputLost ? Math.max(code, 1) : code;
