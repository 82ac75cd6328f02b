import { Command, InvalidArgumentError, Option } from 'commander';
import { BatchpipeError } from '../errors.js';
import type { FaultRule } from '../local/faults.js';
import type { LocalServiceOptions } from '../local/options.js';
import { boolean, integer, list, number } from './parse-values.js';
import { byteSizeArg } from './size-arg.js';

/** Where `serve` keeps state unless told: beside other run state, so it survives restarts. */
const DEFAULT_DATA_DIR = '.batchpipe/local';
const KEY_ENV = 'BATCHPIPE_LOCAL_API_KEY';
const UPSTREAM_KEY_ENV = 'BATCHPIPE_UPSTREAM_API_KEY';

interface ServeFlags {
  host: string;
  port: number;
  dataDir: string;
  apiKey?: string;
  profile: 'dashscope' | 'openai';
  engine: 'test' | 'upstream';
  upstreamUrl?: string;
  upstreamApiKey?: string;
  upstreamTimeoutMs?: number;
  upstreamRetries?: number;
  upstreamBackoffMs?: number;
  latencyMs?: number;
  timeScale?: number;
  seed?: number;
  concurrency?: number;
  maxActiveBatches?: number;
  tokenizer?: 'auto' | 'o200k' | 'estimate';
  invalidJsonRate?: number;
  truncateRate?: number;
  refuseRate?: number;
  failRate?: number;
  failCodes?: string[];
  fileFailRate?: number;
  fault: FaultRule[];
  models?: string[];
  maxLinesPerFile?: number;
  maxBytesPerFile?: number;
  maxLineBytes?: number;
  maxUploadBytes?: number;
  quotas?: boolean;
  rateWindowMs?: number;
  createRate?: number;
  queryRate?: number;
  listRate?: number;
  cancelRate?: number;
  maxUnfinishedBatches?: number;
  maxFiles?: number;
  maxStorage?: number;
  maxDryRuns?: number;
  batchChat?: boolean;
  batchChatMaxPending?: number;
  batchChatMaxPerSecond?: number;
  batchChatMaxPer10s?: number;
  log?: boolean;
}

export function serveCommand(): Command {
  return new Command('serve')
    .description(
      'run the local OpenAI-compatible Batch API service (Files, Batches, Chat, Embeddings) until interrupted',
    )
    .option('--host <host>', 'interface to bind', '127.0.0.1')
    .option('--port <n>', 'port to listen on; 0 picks a free one', integer, 8787)
    .option('--data-dir <dir>', 'where files, batches and results are kept', DEFAULT_DATA_DIR)
    .option('--api-key <key>', `require this bearer key on every call (or set ${KEY_ENV})`)
    .addOption(
      new Option('--profile <name>', 'whose rules to enforce')
        .choices(['dashscope', 'openai'])
        .default('dashscope'),
    )
    .addOption(
      new Option(
        '--engine <name>',
        'what answers requests: test (deterministic, no inference) or upstream (forwarded to --upstream-url)',
      )
        .choices(['test', 'upstream'])
        .default('test'),
    )
    .option(
      '--upstream-url <url>',
      'OpenAI-compatible base URL the upstream engine forwards to, e.g. http://127.0.0.1:11434/v1',
    )
    .option('--upstream-api-key <key>', `bearer key for the upstream (or set ${UPSTREAM_KEY_ENV})`)
    .option('--upstream-timeout-ms <n>', 'real ms one upstream call may take (default 600000)', integer)
    .option(
      '--upstream-retries <n>',
      'retries of an upstream call on 429/5xx or no answer (default 4)',
      integer,
    )
    .option(
      '--upstream-backoff-ms <n>',
      'first backoff between upstream retries, real ms (default 500)',
      integer,
    )
    .option('--latency-ms <n>', 'time each request takes, in real milliseconds', number)
    .option('--time-scale <n>', 'service seconds per real second (3600: an hour a second)', number)
    .option('--seed <n>', 'seed of the test engine', integer)
    .option('--concurrency <n>', 'requests in flight at once across all batches (default 64)', integer)
    .option('--max-active-batches <n>', 'batches validated or run at once; more wait (default 8)', integer)
    .addOption(
      new Option(
        '--tokenizer <name>',
        "how usage is counted: o200k (OpenAI's tokenizer, exact for its models, slower), estimate (fast), or auto: o200k with --profile openai, estimate with dashscope (default)",
      ).choices(['auto', 'o200k', 'estimate']),
    )
    .option('--invalid-json-rate <r>', 'share of JSON-mode answers that are not valid JSON (0..1)', number)
    .option('--truncate-rate <r>', 'share of answers cut short with finish_reason "length" (0..1)', number)
    .option('--refuse-rate <r>', 'share of requests refused with a line-level error (0..1)', number)
    .option(
      '--fail-rate <r>',
      'share of requests failing with a provider error code (0..1), in batches and synchronous calls',
      number,
    )
    .option(
      '--fail-codes <codes>',
      'codes failed requests get, code or code:status (default rate_limit_exceeded,server_error,invalid_parameter_error)',
      list,
    )
    .option(
      '--file-fail-rate <r>',
      'share of batches failing validation as if their file were bad (0..1)',
      number,
    )
    .option(
      '--fault <rule>',
      'arm a fault on API calls, e.g. route=batches.create,kind=error,status=503,times=2 (repeatable)',
      faultRule,
      [] as FaultRule[],
    )
    .option(
      '--models <ids>',
      "offer only these models (comma-separated), or 'any'; default: DashScope's models with the dashscope profile and the test engine, else any",
      list,
    )
    .option('--max-lines-per-file <n>', 'requests per input file (default 50,000)', integer)
    .option('--max-bytes-per-file <size>', 'bytes per input file (default 500MB; openai 200MB)', byteSizeArg)
    .option('--max-line-bytes <size>', 'bytes per input line (default 6MB)', byteSizeArg)
    .option('--max-upload-bytes <size>', 'largest upload accepted (default 1GiB)', byteSizeArg)
    .option(
      '--quotas <on|off>',
      'enforce the account limits (rates, unfinished batches, storage); default on with dashscope, off with openai',
      boolean,
    )
    .option('--rate-window-ms <n>', 'window of the call rates, in service ms (default 60000)', integer)
    .option('--create-rate <n>', 'batch creates per window (default 1000)', integer)
    .option('--query-rate <n>', 'batch retrieves per window (default 1000)', integer)
    .option('--list-rate <n>', 'batch lists per window (default 100)', integer)
    .option('--cancel-rate <n>', 'batch cancels per window (default 1000)', integer)
    .option('--max-unfinished-batches <n>', 'batches not yet finished at once (default 1000)', integer)
    .option('--max-files <n>', 'files stored, result files included (default 10000)', integer)
    .option('--max-storage <size>', 'bytes stored, result files included (default 100GiB)', byteSizeArg)
    .option(
      '--max-dry-runs <n>',
      'unfinished dry runs (endpoint /v1/chat/ds-test) at once (default 2)',
      integer,
    )
    .option(
      '--batch-chat',
      'Batch Chat semantics on /v1/chat/completions: queued calls, pending limit per model, rate caps',
    )
    .option('--batch-chat-max-pending <n>', 'pending calls per model (default 10000)', integer)
    .option('--batch-chat-max-per-second <n>', 'calls per second (default 1000)', integer)
    .option('--batch-chat-max-per-10s <n>', 'calls per 10 seconds (default 10000)', integer)
    .option('--log', 'print one line per API call on stderr')
    .addHelpText(
      'after',
      `
Prints the base URL (ending in /v1) on stdout, then serves until SIGINT or SIGTERM. Point any
OpenAI-compatible client at it: the openai SDK with baseURL, or batchpipe with --base-url. State lives
in --data-dir: stop and start again and unfinished batches carry on where they were.

Per-batch knobs go in the batch's metadata: bp_invalid_json_rate, bp_truncate_rate, bp_refuse_rate,
bp_latency_ms, bp_seed, bp_fail_rate, bp_fail_codes, bp_expire_after_requests, bp_fail_file,
bp_crash_after_requests. See docs/local-service.md.

A --fault rule is comma-separated key=value pairs: route (a route name or a pattern with *: files.create,
batches.create, batches.retrieve, batches.list, batches.cancel, files.content, files.*, *), kind (error,
slow, reset, lose, stall), and status, code, message, retryAfterMs, delayMs, after, times, rate.
"lose" stores the upload or creates the batch, then drops the connection instead of replying.
Faults can also be armed while it runs: POST /_batchpipe/faults with the same fields as JSON.

Example:
  batchpipe serve --port 8787 --time-scale 3600 --latency-ms 5`,
    )
    .action(async (flags: ServeFlags) => {
      const apiKey = flags.apiKey ?? (process.env[KEY_ENV] || undefined);
      if (flags.engine === 'upstream' && !flags.upstreamUrl)
        throw new BatchpipeError('BP_USAGE', 'serve --engine upstream needs --upstream-url <base URL>');
      const upstreamKey = flags.upstreamApiKey ?? (process.env[UPSTREAM_KEY_ENV] || undefined);
      const options: LocalServiceOptions = {
        host: flags.host,
        port: flags.port,
        dataDir: flags.dataDir,
        apiKey,
        profile: flags.profile,
        engine: flags.engine,
        upstream: flags.upstreamUrl
          ? {
              url: flags.upstreamUrl,
              apiKey: upstreamKey,
              timeoutMs: flags.upstreamTimeoutMs,
              retries: flags.upstreamRetries,
              backoffMs: flags.upstreamBackoffMs,
            }
          : undefined,
        latencyMs: flags.latencyMs,
        timeScale: flags.timeScale,
        seed: flags.seed,
        concurrency: flags.concurrency,
        maxActiveBatches: flags.maxActiveBatches,
        tokenizer: flags.tokenizer,
        invalidJsonRate: flags.invalidJsonRate,
        truncateRate: flags.truncateRate,
        refuseRate: flags.refuseRate,
        failRate: flags.failRate,
        failCodes: flags.failCodes,
        fileFailRate: flags.fileFailRate,
        faults: flags.fault,
        models: flags.models?.length === 1 && flags.models[0] === 'any' ? 'any' : flags.models,
        limits: {
          maxLinesPerFile: flags.maxLinesPerFile,
          maxBytesPerFile: flags.maxBytesPerFile,
          maxLineBytes: flags.maxLineBytes,
          maxUploadBytes: flags.maxUploadBytes,
        },
        quotas: {
          enabled: flags.quotas,
          rateWindowMs: flags.rateWindowMs,
          createRate: flags.createRate,
          queryRate: flags.queryRate,
          listRate: flags.listRate,
          cancelRate: flags.cancelRate,
          maxUnfinishedBatches: flags.maxUnfinishedBatches,
          maxFiles: flags.maxFiles,
          maxStorageBytes: flags.maxStorage,
        },
        dryRun: { maxConcurrent: flags.maxDryRuns },
        batchChat: {
          enabled: flags.batchChat,
          maxPendingPerModel: flags.batchChatMaxPending,
          maxPerSecond: flags.batchChatMaxPerSecond,
          maxPer10s: flags.batchChatMaxPer10s,
        },
        log: flags.log ? (line) => process.stderr.write(`${line}\n`) : undefined,
      };
      const { startLocalService } = await import('../local/index.js');
      const service = await startLocalService(withoutUndefined(options));
      // Ready to stop cleanly, and everything said, before the URL line: scripts start on that line and
      // may stop the service right after it (a SIGTERM before the handlers killed it mid-banner).
      const stopped = new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'));
        process.once('SIGTERM', () => resolve('SIGTERM'));
      });
      process.stderr.write(
        `batchpipe local service at ${service.url} (profile ${service.profile}, ${
          flags.engine === 'upstream'
            ? `upstream engine: requests forwarded to ${originOf(flags.upstreamUrl!)}`
            : 'test engine: deterministic, no inference'
        })\n` +
          `  data dir ${service.dataDir}; ${apiKey ? 'an API key is required' : 'no API key required'}; Ctrl-C to stop\n`,
      );
      if (!apiKey && !isLoopback(flags.host))
        process.stderr.write(
          `warning: listening on ${flags.host} without an API key: anyone who can reach this host can upload, read and delete files and run batches; set --api-key or ${KEY_ENV}\n`,
        );
      process.stdout.write(`${service.url}\n`);
      const signal = await stopped;
      process.stderr.write(`${signal}: stopping (running batches checkpoint and resume on the next start)\n`);
      await service.close();
      process.stderr.write('stopped\n');
    });
}

const NUMERIC_FAULT_FIELDS = new Set(['status', 'retryAfterMs', 'delayMs', 'after', 'times', 'rate']);

/** `route=batches.create,kind=error,status=503,times=2` as a fault rule (checked by the service). */
function faultRule(value: string, previous: FaultRule[]): FaultRule[] {
  const rule: Record<string, string | number> = {};
  for (const pair of list(value)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new InvalidArgumentError(`expected key=value pairs, got "${pair}"`);
    const key = pair.slice(0, at).trim();
    const raw = pair.slice(at + 1).trim();
    rule[key] = NUMERIC_FAULT_FIELDS.has(key) ? number(raw) : raw;
  }
  return [...previous, rule as unknown as FaultRule];
}

/** True for a host only this machine can reach. */
function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/** Where requests go, without any credentials the URL may carry. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'the upstream';
  }
}

/** Drops unset flags so the service's own defaults apply (its options are strict about undefined limits). */
function withoutUndefined<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined) continue;
    out[key] =
      item !== null && typeof item === 'object' && !Array.isArray(item)
        ? withoutUndefined(item as object)
        : item;
  }
  return out as T;
}
