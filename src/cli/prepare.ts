import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { loadMapper, mapperModuleUrl } from '../core/requests/mapper-module.js';
import type { PrepareResult } from '../jobs/prepare.js';
import type { ProviderName } from '../providers/profile.js';
import type { Rejection } from '../types.js';
import { cliWording, inCliWords } from './cli-wording.js';
import { count, info, type Output, plural, printJson, rejectionLine, warningLine } from './output.js';
import {
  addProviderOptions,
  addRequestOptions,
  addRowOptions,
  addShardOptions,
  addSliceOption,
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
  addRowOptions(command);
  addProviderOptions(command);
  addShardOptions(command);
  addSliceOption(command);
  command
    .option('--json', 'print the summary as JSON on stdout')
    .option('--quiet', 'print nothing but errors')
    .addHelpText(
      'after',
      `
Every row ends up once: as a request line in a request file, or in rejections.jsonl with the rule it
broke. Rejected rows are data (exit 0); exit 1 when no row became a request ("nothing to submit"),
or when --model or --endpoint is one the provider does not offer (the rows are still written to
rejections.jsonl).

Example:
  batchpipe prepare reviews.csv --template 'Classify the sentiment of this review: {{review}}' \\
      --system 'Answer with one word.' --model qwen-plus --id-column id --out .batchpipe/prep`,
    )
    .action((input: string, flags: PrepareFlags) => inCliWords(command, () => run(command, input, flags)));
  return command;
}

async function run(command: Command, input: string, flags: PrepareFlags): Promise<void> {
  const { defaultProvider } = await import('../providers/connection.js');
  const { nothingToSubmit, prepare } = await import('../jobs/prepare.js');
  const out: Output = { json: flags.json === true, quiet: flags.quiet === true };
  const { out: outDir, mapper: mapperFile, json: _json, quiet: _quiet, ...options } = flags;
  // Loaded here first, so a mistake in it is found before any input is read; the stages load it again
  // (from the module cache) and, for a large table, on worker threads.
  const mapper = mapperFile ? mapperModuleUrl(mapperFile) : undefined;
  if (mapperFile) await loadMapper(mapper!, mapperFile);
  const result = await prepare(input, {
    ...options,
    // The rules of the provider the requests are for: named, or the one the environment points at.
    provider: (options.provider as ProviderName | undefined) ?? defaultProvider(),
    outDir,
    mapper,
    // Each warning once as it first happens; those raised by many rows again with their count at the end.
    onWarning: (w) => info(out, cliWording(command, warningLine(w))),
  });
  if (out.json) printJson(result);
  else await report(command, out, result);
  const nothing = nothingToSubmit(result);
  if (nothing) throw nothing;
}

/** Warnings with their counts, the rejections, then the summary line last. */
async function report(command: Command, out: Output, result: PrepareResult): Promise<void> {
  for (const w of result.warnings) if (w.count > 1) info(out, cliWording(command, warningLine(w)));
  if (result.rejected > 0)
    await showRejections(command, out, join(result.outDir, result.rejections.file), result.rejected);
  for (const shard of result.shards)
    info(
      out,
      `  ${join(result.outDir, shard.file)}  ${plural(shard.lines, 'line')}  ${shard.model}  sha256 ${shard.sha256.slice(0, 16)}`,
    );
  const files = plural(result.shards.length, 'file');
  info(
    out,
    `prepared ${plural(result.rows, 'row')}: ${count(result.requests)} requests in ${files}, ${count(result.rejected)} rejected -> ${result.outDir}`,
  );
}

/** The first rejections, read line by line: the file may hold millions. */
async function showRejections(command: Command, out: Output, file: string, total: number): Promise<void> {
  info(out, `rejected rows (all in ${file}):`);
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 64 * 1024 });
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let shown = 0;
  try {
    for await (const line of lines) {
      if (!line) continue;
      const r = JSON.parse(line) as Omit<Rejection, 'index' | 'kind'> & { row: number };
      info(out, `  ${cliWording(command, rejectionLine({ ...r, index: r.row }))}`);
      if (++shown === SHOWN_REJECTIONS) break;
    }
  } finally {
    lines.close();
    stream.destroy();
  }
  if (total > shown) info(out, `  ... and ${count(total - shown)} more`);
}
