import { join } from 'node:path';
import type { RunManifest } from '../run/manifest.js';
import { jsonlLines } from '../run/request-ids.js';
import type { TokenRange } from './request-tokens.js';

/** Tokens that result lines reported, summed over successful requests (the ones billed). */
export interface UsageTotals {
  /** Successful requests whose line carried usage. */
  requests: number;
  /** `prompt_tokens` (`input_tokens` on /v1/responses). */
  input: number;
  /** `completion_tokens` (`output_tokens`): thinking is inside it, as billed. */
  output: number;
  /** `completion_tokens_details.reasoning_tokens`: shown, already inside `output`, never added again. */
  thinking: number;
  /** Result files read. */
  files: number;
}

interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  input_tokens?: number;
  output_tokens?: number;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
  output_tokens_details?: { reasoning_tokens?: number } | null;
}

/** A result line's usage when the request succeeded (2xx), else undefined: failed requests are not billed. */
function usageOf(line: string): Usage | undefined {
  // Most error lines carry no usage at all: skip the parse.
  if (!line.includes('"usage"')) return undefined;
  const parsed = JSON.parse(line) as {
    response?: { status_code?: number; body?: { usage?: Usage | null } | null } | null;
  };
  const status = parsed.response?.status_code;
  if (status !== undefined && (status < 200 || status > 299)) return undefined;
  return parsed.response?.body?.usage ?? undefined;
}

/** Sums the usage of result files (JSON Lines in the Batch API's output shape), a line at a time. */
export async function usageOfFiles(paths: readonly string[]): Promise<UsageTotals> {
  const totals: UsageTotals = { requests: 0, input: 0, output: 0, thinking: 0, files: 0 };
  for (const path of paths) {
    totals.files++;
    for await (const line of jsonlLines(path)) {
      const usage = usageOf(line);
      if (!usage) continue;
      totals.requests++;
      totals.input += usage.prompt_tokens ?? usage.input_tokens ?? 0;
      totals.output += usage.completion_tokens ?? usage.output_tokens ?? 0;
      totals.thinking +=
        usage.completion_tokens_details?.reasoning_tokens ??
        usage.output_tokens_details?.reasoning_tokens ??
        0;
    }
  }
  return totals;
}

/**
 * The output files a run has downloaded so far (error files hold failed requests: not billed). A run
 * in progress has some; a finished run has all.
 */
export function downloadedOutputs(runDir: string, manifest: RunManifest): string[] {
  return manifest.jobs.filter((j) => j.output_path).map((j) => join(runDir, j.output_path!));
}

/** Answer and thinking lengths seen in earlier results: the range an estimate may use for output. */
export interface UsageSample {
  /** Requests in the sample. */
  requests: number;
  /** Answer tokens (completion less reasoning) per request, least and most. */
  output: TokenRange;
  /** Thinking tokens per request; undefined when none thought. */
  thinking: TokenRange | undefined;
}

/** Reads a sample of answer lengths from result files (`--output-sample`). Undefined when none succeeded. */
export async function usageSample(paths: readonly string[]): Promise<UsageSample | undefined> {
  let requests = 0;
  let out = { min: Number.POSITIVE_INFINITY, max: 0 };
  let think = { min: Number.POSITIVE_INFINITY, max: 0 };
  for (const path of paths)
    for await (const line of jsonlLines(path)) {
      const usage = usageOf(line);
      if (!usage) continue;
      requests++;
      const reasoning =
        usage.completion_tokens_details?.reasoning_tokens ??
        usage.output_tokens_details?.reasoning_tokens ??
        0;
      const answer = (usage.completion_tokens ?? usage.output_tokens ?? 0) - reasoning;
      out = { min: Math.min(out.min, answer), max: Math.max(out.max, answer) };
      think = { min: Math.min(think.min, reasoning), max: Math.max(think.max, reasoning) };
    }
  if (requests === 0) return undefined;
  return { requests, output: out, thinking: think.max > 0 ? think : undefined };
}
