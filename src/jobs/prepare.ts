import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { DERIVED_ID_BYTES } from '../core/requests/custom-id.js';
import { hasMarkers } from '../core/requests/line-template.js';
import { settingsRefusal } from '../core/requests/request-rules.js';
import { answerSchemaText } from '../core/structured/structured-output.js';
import { BatchpipeError } from '../errors.js';
import { type Warning, WarningLog } from '../internal/warnings.js';
import { parseOptions } from '../options.js';
import { PROVIDER_NAMES, type ProviderProfile } from '../providers/profile.js';
import { PROFILES } from '../providers/profiles.js';
import { resolveProfile } from '../providers/resolve-profile.js';
import { type PreparedSummary, REJECTIONS_FILE, Sharder, shardRequests } from '../sinks/shard-requests.js';
import { CsvTableFields, csvSource, tableCsvOptions } from '../sources/csv-source.js';
import { jsonlSource } from '../sources/jsonl-source.js';
import { RequestBuilder, ToRequestsFields, toRequests } from '../transforms/to-requests.js';
import { validateRequests } from '../transforms/validate-requests.js';
import { prepareCsvBytes } from './csv-bytes.js';
import { INPUT_FORMATS, inputFormat } from './input-format.js';

const PrepareOptions = z.strictObject({
  /** Directory for the request files, rejections.jsonl and shards.json. */
  outDir: z.string().min(1),
  /** Input format; default from the file extension. */
  format: z.enum(INPUT_FORMATS).optional(),
  /** Name used in errors when the input is a stream. */
  name: z.string().min(1).optional(),
  // source
  ...CsvTableFields,
  /** JSONL input: integers beyond 2^53 arrive as strings with every digit ("string", default) or as
   *  lossy numbers ("number", with a warning). */
  bigIntegers: z.enum(['string', 'number']).default('string'),
  // requests
  ...ToRequestsFields,
  // provider and validation
  provider: z.enum(PROVIDER_NAMES).default('local'),
  models: z.array(z.string().min(1)).optional(),
  anyModel: z.boolean().optional(),
  contextWindows: z.record(z.string(), z.number().int().positive()).optional(),
  checkContext: z.boolean().default(true),
  // files
  maxLinesPerFile: z.number().int().positive().optional(),
  maxBytesPerFile: z.number().int().positive().optional(),
  maxLineBytes: z.number().int().positive().optional(),
  /** "auto" (default) copies CSV bytes straight into request lines when a template builds them;
   *  "rows" always goes through Row objects (the general path, and what the fast path must equal). */
  engine: z.enum(['auto', 'rows']).default('auto'),
});
export type PrepareOptions = z.input<typeof PrepareOptions>;
export type PrepareSettings = z.output<typeof PrepareOptions>;

export interface PrepareResult extends PreparedSummary {
  /** Where the files are. */
  outDir: string;
  /** Distinct warnings, with how many rows raised each. */
  warnings: Warning[];
  /** Which engine ran: "bytes" (CSV + template fast path) or "rows". */
  engine: 'bytes' | 'rows';
}

/** How many codes the "nothing to submit" message names. */
const SHOWN_CODES = 3;

/**
 * BP_NOTHING_TO_SUBMIT when rows were read and not one became a request (every row is still in
 * rejections.jsonl), naming the most common rejection codes; undefined otherwise.
 */
export function nothingToSubmit(result: PreparedSummary & { outDir: string }): BatchpipeError | undefined {
  if (result.rows === 0 || result.requests > 0) return undefined;
  const codes = Object.entries(result.rejections.by_code).sort((a, b) => b[1] - a[1]);
  const common = codes.slice(0, SHOWN_CODES).map(([code, n]) => `${code} ${n.toLocaleString('en-US')}`);
  if (codes.length > SHOWN_CODES) common.push('...');
  const rows = result.rows === 1 ? '1 row was' : `all ${result.rows.toLocaleString('en-US')} rows were`;
  return new BatchpipeError(
    'BP_NOTHING_TO_SUBMIT',
    `nothing to submit: ${rows} rejected (most common: ${common.join(', ')}); see ${join(result.outDir, result.rejections.file)}`,
  );
}

/**
 * Turns a table into Batch API request files: reads CSV/TSV/JSONL, builds a request per row (template
 * or mapper), checks every provider rule, and cuts the lines into files within the provider's limits.
 * Every row ends up once: as a request line or in rejections.jsonl. The function behind
 * `batchpipe prepare`; the same stages compose by hand with `pipeline()`.
 * Throws BP_MODEL_NOT_OFFERED or BP_ENDPOINT_NOT_OFFERED, once every row has been written to
 * rejections.jsonl, when the `model` or `endpoint` option is one the provider does not offer: that is a
 * mistake in the settings, not in the rows.
 */
export async function prepare(input: string | Readable, options: PrepareOptions): Promise<PrepareResult> {
  const opts = parseOptions(PrepareOptions, options, 'prepare');
  const file = typeof input === 'string' ? input : (opts.name ?? '<stream>');
  const format = inputFormat(file, opts.format);
  const profile = resolveProfile({
    provider: opts.provider,
    models: opts.models,
    anyModel: opts.anyModel,
    contextWindows: opts.contextWindows,
    maxLinesPerFile: opts.maxLinesPerFile,
    maxBytesPerFile: opts.maxBytesPerFile,
    maxLineBytes: opts.maxLineBytes,
  });
  const onWarning = opts.onWarning;
  const early = localModelWarning(profile, opts.model);
  if (early) onWarning?.(early);
  const before = early ? [early] : [];
  const refused = settingsRefusal(profile, opts.endpoint, opts.model);
  const requestOptions = {
    endpoint: opts.endpoint,
    model: opts.model,
    template: opts.template,
    system: opts.system,
    mapper: opts.mapper,
    idColumn: opts.idColumn,
    imageColumn: opts.imageColumn,
    temperature: opts.temperature,
    topP: opts.topP,
    maxTokens: opts.maxTokens,
    seed: opts.seed,
    stop: opts.stop,
    presencePenalty: opts.presencePenalty,
    frequencyPenalty: opts.frequencyPenalty,
    responseFormat: opts.responseFormat,
    labels: opts.labels,
    schema: opts.schema,
    structuredOutput: opts.structuredOutput,
    enableThinking: opts.enableThinking,
    thinkingBudget: opts.thinkingBudget,
    dimensions: opts.dimensions,
    extraBody: opts.extraBody,
    provider: profile,
  };
  const csvOptions = { name: opts.name, ...tableCsvOptions(opts, format) };
  // Checks the request options (template xor mapper, model...) before anything is read.
  RequestBuilder.create(requestOptions);
  const ruleOptions = {
    endpoint: opts.endpoint,
    singleModel: false,
    checkContext: opts.checkContext,
    warnThinkingDefault: false,
  };

  const fast =
    opts.engine === 'auto' &&
    format !== 'jsonl' &&
    // The fast path does not check id lengths: every id it makes fits in 71 bytes (sha256-<64 hex>).
    profile.limits.maxCustomIdBytes >= DERIVED_ID_BYTES &&
    opts.mapper === undefined &&
    !hasMarkers(
      JSON.stringify([
        opts.template,
        opts.system,
        opts.extraBody,
        opts.responseFormat,
        opts.stop,
        opts.model,
        opts.labels,
        opts.schema === undefined ? undefined : answerSchemaText(opts.schema),
      ]),
    );
  if (fast) {
    const sharder = new Sharder(opts.outDir, 'requests', profile.limits);
    const warnings = new WarningLog(onWarning);
    const summary = await prepareCsvBytes(input, file, {
      csv: csvOptions,
      requests: requestOptions,
      rules: ruleOptions,
      profile,
      sharder,
      warnings,
    });
    return settled(
      { ...summary, outDir: opts.outDir, warnings: [...before, ...warnings.list()], engine: 'bytes' },
      refused,
    );
  }

  const jsonl =
    format === 'jsonl'
      ? jsonlSource(input, {
          name: opts.name,
          badRows: opts.badRows,
          maxRowSize: opts.maxRowSize,
          bigIntegers: opts.bigIntegers,
          onWarning,
        })
      : undefined;
  const source = jsonl ?? csvSource(input, csvOptions);
  const build = toRequests({ ...requestOptions, onWarning });
  const validate = validateRequests({ provider: profile, ...ruleOptions, onWarning });
  const sink = shardRequests({ outDir: opts.outDir, provider: profile });
  await pipeline(source, build, validate, sink);
  const warnings = [
    ...before,
    ...(jsonl?.warnings.list() ?? []),
    ...build.warnings.list(),
    ...validate.warnings.list(),
  ];
  return settled({ ...sink.summary!, outDir: opts.outDir, warnings, engine: 'rows' }, refused);
}

/**
 * The embedded service emulates DashScope and fails, at validation, a batch whose model DashScope does
 * not offer; the client's `local` profile takes any model, since `batchpipe serve --models any` and the
 * upstream engine do. Said before anything is submitted, rather than learned from a failed batch.
 */
function localModelWarning(profile: ProviderProfile, model: string | undefined): Warning | undefined {
  if (profile.name !== 'local' || model === undefined) return undefined;
  const dryRun = PROFILES['dashscope-cn'].dryRun?.model;
  if (model === dryRun || PROFILES['dashscope-cn'].models.some((m) => m.id === model)) return undefined;
  return {
    code: 'BP_WARN_LOCAL_MODEL',
    message: `model "${model}" is not one DashScope offers: the local service fails its batches at validation unless it runs with --models any or an upstream engine (batchpipe serve --models any)`,
    count: 1,
  };
}

/** The result, or the error of settings the provider refuses (after the rows went to rejections.jsonl). */
function settled(result: PrepareResult, refused: ReturnType<typeof settingsRefusal>): PrepareResult {
  if (!refused) return result;
  const where = join(result.outDir, REJECTIONS_FILE);
  const rows =
    result.rejected === 0
      ? 'no row was read'
      : `${result.rejected === result.rows ? 'every row was' : `${result.rejected} of ${result.rows} rows were`} rejected and written to ${where}`;
  throw new BatchpipeError(
    refused.code,
    `${refused.message}; ${rows}; pick what the provider offers, or another provider`,
    { option: refused.code === 'BP_ENDPOINT_NOT_OFFERED' ? 'endpoint' : 'model' },
  );
}
