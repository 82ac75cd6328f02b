import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import type { ProviderName } from '../providers/profile.js';
import type { Rejection } from '../types.js';
import { loadMapper } from './load-mapper.js';
import { count, info, type Output, plural, printJson, rejectionLine, warningLine } from './output.js';
import {
  addProviderOptions,
  addRequestOptions,
  addShardOptions,
  addSourceOptions,
} from './request-options.js';

/** How many rejections a command prints before pointing at the file. */
const SHOWN_REJECTIONS = 10;

interface PrepareFlags extends Record<string, unknown> {
  out: string;
  mapper?: string;
  json?: boolean;
  quiet?: boolean;
}

export function prepareCommand(): Command {
  const command = new Command('prepare')
    .description(
      'turn a table (CSV, TSV, JSONL) into Batch API request files, checked against the provider rules',
    )
    .argument('<input>', 'the table to read')
    .requiredOption('--out <dir>', 'directory for the request files, rejections.jsonl and shards.json');
  addRequestOptions(command);
  addSourceOptions(command);
  addProviderOptions(command);
  addShardOptions(command);
  command
    .option('--json', 'print the summary as JSON on stdout')
    .option('--quiet', 'print nothing but errors')
    .addHelpText(
      'after',
      `
Every row ends up once: as a request line in a request file, or in rejections.jsonl with the rule it
broke. Exit code 0 when the files were written (rejected rows are data), 1 when the run failed, 2 on a
usage error.

Example:
  batchpipe prepare reviews.csv --template 'Classify the sentiment of this review: {{review}}' \\
      --system 'Answer with one word.' --model qwen-plus --id-column id --out .batchpipe/prep`,
    )
    .action(async (input: string, flags: PrepareFlags) => {
      const { defaultProvider } = await import('../providers/connection.js');
      const { prepare } = await import('../run/prepare.js');
      const out: Output = { json: flags.json === true, quiet: flags.quiet === true };
      const { out: outDir, mapper: mapperFile, json: _json, quiet: _quiet, ...options } = flags;
      const mapper = mapperFile ? await loadMapper(mapperFile) : undefined;
      const result = await prepare(input, {
        ...options,
        // The rules of the provider the requests are for: named, or the one the environment points at.
        provider: (options.provider as ProviderName | undefined) ?? defaultProvider(),
        outDir,
        mapper,
        onWarning: (w) => info(out, warningLine(w)),
      });
      if (out.json) return printJson(result);
      const files = plural(result.shards.length, 'file');
      info(
        out,
        `prepared ${plural(result.rows, 'row')}: ${count(result.requests)} requests in ${files}, ${count(result.rejected)} rejected -> ${outDir}`,
      );
      for (const shard of result.shards)
        info(
          out,
          `  ${join(outDir, shard.file)}  ${plural(shard.lines, 'line')}  ${shard.model}  sha256 ${shard.sha256.slice(0, 16)}`,
        );
      if (result.rejected > 0)
        await showRejections(out, join(outDir, result.rejections.file), result.rejected);
      for (const w of result.warnings) if (w.count > 1) info(out, warningLine(w));
    });
  return command;
}

async function showRejections(out: Output, file: string, total: number): Promise<void> {
  const lines = (await readFile(file, 'utf8')).split('\n', SHOWN_REJECTIONS);
  info(out, `rejected rows (all in ${file}):`);
  for (const line of lines) {
    if (!line) continue;
    const r = JSON.parse(line) as Omit<Rejection, 'index' | 'kind'> & { row: number };
    info(out, `  ${rejectionLine({ ...r, index: r.row })}`);
  }
  if (total > SHOWN_REJECTIONS) info(out, `  ... and ${count(total - SHOWN_REJECTIONS)} more`);
}
