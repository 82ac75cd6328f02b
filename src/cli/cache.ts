import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { CACHE_DIR_NAME, cacheStats, pruneCache } from '../cache/result-cache.js';
import { RUNS_DIR } from '../run/run-dir.js';
import { count, info, type Output, plural, printJson } from './output.js';
import { byteSizeArg } from './size-arg.js';

interface CacheCommandFlags {
  cacheDir?: string;
  runsDir: string;
  json?: boolean;
  quiet?: boolean;
}

interface PruneFlags extends CacheCommandFlags {
  maxSize?: number;
  olderThan?: number;
  all?: boolean;
}

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30d`, `12h`, `90m` -> milliseconds. */
function durationArg(value: string): number {
  const match = /^(\d+(?:\.\d+)?)([mhd])$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`expected a duration such as 30d, 12h or 90m, got "${value}"`);
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}

function withDirOptions(command: Command): Command {
  // Usage errors of a subcommand exit 2 as the others' do (main.ts overrides only the top level).
  return command
    .exitOverride()
    .option('--cache-dir <dir>', 'the result cache (default: <runs-dir>/.cache)')
    .option('--runs-dir <dir>', 'where runs live', RUNS_DIR)
    .option('--json', 'print JSON on stdout')
    .option('--quiet', 'print nothing but errors');
}

const dirOf = (flags: CacheCommandFlags) => flags.cacheDir ?? join(flags.runsDir, CACHE_DIR_NAME);
const outOf = (flags: CacheCommandFlags): Output => ({
  json: flags.json === true,
  quiet: flags.quiet === true,
});

/** `batchpipe cache stats|prune`: the result cache runs share (docs/cache.md). */
export function cacheCommand(): Command {
  const command = new Command('cache').description(
    'the result cache: answers of earlier runs, taken instead of sending the same request again',
  );
  command.addCommand(
    withDirOptions(
      new Command('stats').description('what the cache holds: answers, bytes, oldest and newest'),
    ).action(async (flags: CacheCommandFlags) => {
      const stats = await cacheStats(dirOf(flags));
      const out = outOf(flags);
      if (out.json) return printJson(stats);
      info(
        out,
        `${stats.dir}: ${plural(stats.entries, 'answer')} in ${plural(stats.segments, 'segment')}, ${count(stats.bytes)} bytes${stats.oldest ? ` (oldest ${stats.oldest}, newest ${stats.newest})` : ''}`,
      );
      // An older batchpipe's answers (SHA-256 keys): never read, gone at the next prune.
      if (stats.staleBytes > 0)
        info(
          out,
          `${count(stats.staleBytes)} bytes in an older format answer nothing: \`batchpipe cache prune\` removes them`,
        );
    }),
  );
  command.addCommand(
    withDirOptions(
      new Command('prune')
        .description('removes answers, oldest first, by age or to fit a size (whole segments: one a run)')
        .option('--max-size <size>', 'keep at most this much, e.g. 500MB', byteSizeArg)
        .option('--older-than <age>', 'remove what was stored longer ago than this, e.g. 30d', durationArg)
        .option('--all', 'remove every answer'),
    ).action(async (flags: PruneFlags) => {
      const out = outOf(flags);
      const removed = await pruneCache(dirOf(flags), {
        maxBytes: flags.maxSize,
        olderThanMs: flags.olderThan,
        all: flags.all,
      });
      const left = await cacheStats(dirOf(flags));
      if (out.json) return printJson({ removed, left });
      info(
        out,
        `removed ${plural(removed.entries, 'answer')} (${count(removed.bytes)} bytes); ${plural(left.entries, 'answer')} left (${count(left.bytes)} bytes)`,
      );
    }),
  );
  return command;
}
