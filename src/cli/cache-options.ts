import type { Command } from 'commander';
import type { RunTableResult } from '../jobs/run-table.js';
import { count, plural } from './output.js';
import { byteSizeArg } from './size-arg.js';

export interface CacheFlags {
  dedup?: boolean;
  cache?: boolean;
  cacheDir?: string;
  cacheMaxSize?: number;
}

/** Flags of the result cache and deduplication (docs/cache.md), for `run`. */
export function addCacheOptions(command: Command): Command {
  return command
    .option(
      '--dedup',
      'send identical requests (same model and body) once, and use the result cache, even without temperature 0 or a seed (by default only requests that set one)',
    )
    .option('--no-dedup', 'send every row, identical requests included')
    .option('--no-cache', "neither take answers from the result cache nor store this run's answers there")
    .option('--cache-dir <dir>', 'the result cache (default: <runs-dir>/.cache, shared by the runs there)')
    .option(
      '--cache-max-size <size>',
      "the result cache's size bound, e.g. 2GB: past it the oldest answers go (default: 1GB)",
      byteSizeArg,
    );
}

/** The cache flags in runTable's spelling. */
export function cacheOptionsFrom(flags: CacheFlags) {
  return { cache: flags.cache !== false, cacheDir: flags.cacheDir, cacheMaxBytes: flags.cacheMaxSize };
}

/** Flags `addCacheOptions` adds that are not prepare's. */
export const CACHE_FLAGS = ['cache', 'cacheDir', 'cacheMaxSize'];

/** What reuse did, as the summary's lines. */
export function reuseLines(result: RunTableResult): string[] {
  const lines: string[] = [];
  const reuse = result.prepared.reuse;
  if (reuse && (reuse.duplicates > 0 || reuse.cached > 0))
    lines.push(
      `sent ${plural(result.prepared.requests, 'request')} for ${plural(result.prepared.rows - result.prepared.rejected, 'row')}: ${count(reuse.cached)} answered from the cache, ${count(reuse.duplicates)} identical to another row's request (answered from it)`,
    );
  if (reuse && reuse.unkept > 0)
    lines.push(
      `note: ${plural(reuse.unkept, 'request')} past the bound of distinct requests a run remembers were sent without deduplication`,
    );
  if (result.settled && result.settled.stored > 0)
    lines.push(`stored ${plural(result.settled.stored, 'answer')} in the result cache`);
  if ((result.repeats ?? 0) > 0)
    lines.push(
      `note: ${plural(result.repeats!, 'request')} repeated another of this run (no temperature 0 or seed, so each was sent): --dedup would have sent them once`,
    );
  return lines;
}

/** The same as JSON. */
export function reuseJson(result: RunTableResult) {
  return {
    reuse: result.prepared.reuse ?? null,
    stored: result.settled?.stored ?? 0,
    fanned_out: result.settled?.fannedOut ?? 0,
    repeats: result.repeats ?? 0,
  };
}
