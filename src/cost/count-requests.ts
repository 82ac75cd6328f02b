import { open } from 'node:fs/promises';
import { answerRange } from './answer-range.js';
import {
  type CountTokens,
  loadCounter,
  modelTokenRule,
  remembering,
  type TokenizerName,
} from './model-tokenizer.js';
import { RequestScanner } from './request-scan.js';
import { answerCap, capped, choices, inputTokens, plus, type TokenRange, times } from './request-tokens.js';
import type { UsageSample } from './usage.js';

/**
 * Part of one request file to count: the lines that start in bytes `[from, to)` (all of them, or the
 * first `limit`), with what every line of the file shares. Plain data: it is sent to counting threads.
 */
export interface CountJob {
  path: string;
  from: number;
  to: number;
  limit?: number | undefined;
  model: string;
  endpoint: string;
  /** The job's answer schema (labels or schema compiled), for the output range. */
  answerSchema?: Record<string, unknown> | undefined;
  sample?: UsageSample | undefined;
  /** The provider thinks unless the body turns thinking off (thinksByDefault). */
  thinksUnlessOff: boolean;
}

/** What the lines of a CountJob add up to: sums, so parts of a file add up to the whole. */
export interface Counted {
  requests: number;
  /** Bytes of the lines counted, newlines included. */
  bytesRead: number;
  input: number;
  schemaTokens: number;
  images: number;
  output: TokenRange;
  thinking: TokenRange | null;
  billed: TokenRange;
}

/** OpenAI's reasoning models reason on every request, inside `max_completion_tokens`. */
const OPENAI_REASONING = /^(o1|o3|o4|gpt-5)/;
/** A free-text answer has at least one token. */
const FREE_TEXT: TokenRange = { min: 1, max: null };

/** A tokenizer's counter and the same remembering repeated texts, per tokenizer, for this thread. */
const counters = new Map<TokenizerName, { count: CountTokens; countRepeated: CountTokens }>();

async function countersFor(name: TokenizerName) {
  let counter = counters.get(name);
  if (counter === undefined) {
    const count = await loadCounter(name);
    counter = { count, countRepeated: remembering(count) };
    counters.set(name, counter);
  }
  return counter;
}

/**
 * Counts a job's lines: input with the model's tokenizer and chat template, output and thinking as
 * ranges from what bounds them. A line at a time: memory is a read buffer and the tokenizer's caches.
 */
export async function countRequests(job: CountJob): Promise<Counted> {
  const rule = modelTokenRule(job.model, job.endpoint);
  const { count, countRepeated } = await countersFor(rule.tokenizer);
  const embeddings = job.endpoint === '/v1/embeddings';
  const sample = job.sample;
  // Every line of a file has the same model and, from one job, the same answer shape.
  const schemaAnswer =
    job.answerSchema === undefined ? undefined : answerRange(job.answerSchema, countRepeated);
  const openaiReasoning = OPENAI_REASONING.test(job.model);
  const limit = job.limit ?? Number.POSITIVE_INFINITY;
  const counted: Counted = {
    requests: 0,
    bytesRead: 0,
    input: 0,
    schemaTokens: 0,
    images: 0,
    output: { min: 0, max: 0 },
    thinking: null,
    billed: { min: 0, max: 0 },
  };
  const scanner = new RequestScanner();
  for await (const bytes of linesStartingIn(job.path, job.from, job.to)) {
    if (counted.requests >= limit) break;
    counted.bytesRead += bytes.length + 1;
    const body = scanner.body(bytes);
    counted.requests++;
    const tokens = inputTokens(body, job.endpoint, rule, count, countRepeated);
    counted.input += tokens.tokens;
    counted.schemaTokens += tokens.schema;
    counted.images += tokens.images;
    if (embeddings) continue;
    const n = choices(body);
    const cap = answerCap(body);
    const base = sample?.output ?? schemaAnswer ?? FREE_TEXT;
    const answer = times(capped(base, cap), n);
    counted.output = plus(counted.output, answer);
    const thinks =
      openaiReasoning ||
      body.enable_thinking === true ||
      (body.enable_thinking === undefined && job.thinksUnlessOff);
    if (!thinks) {
      counted.billed = plus(counted.billed, answer);
      continue;
    }
    const budget = typeof body.thinking_budget === 'number' ? body.thinking_budget : undefined;
    // OpenAI: reasoning shares max_completion_tokens with the answer. DashScope: thinking_budget bounds it.
    const bound = openaiReasoning ? cap : budget;
    const own = times(capped(sample?.thinking ?? { min: 0, max: null }, bound), n);
    counted.thinking = plus(counted.thinking ?? { min: 0, max: 0 }, own);
    const both = plus(answer, own);
    counted.billed = plus(
      counted.billed,
      openaiReasoning ? capped(both, cap === undefined ? undefined : cap * n) : both,
    );
  }
  return counted;
}

/** The sum of two counts of parts of one file. */
export function addCounted(a: Counted, b: Counted): Counted {
  return {
    requests: a.requests + b.requests,
    bytesRead: a.bytesRead + b.bytesRead,
    input: a.input + b.input,
    schemaTokens: a.schemaTokens + b.schemaTokens,
    images: a.images + b.images,
    output: plus(a.output, b.output),
    thinking: a.thinking && b.thinking ? plus(a.thinking, b.thinking) : (a.thinking ?? b.thinking),
    billed: plus(a.billed, b.billed),
  };
}

const LF = 0x0a;
const CR = 0x0d;
const READ_BYTES = 1024 * 1024;

/**
 * The non-empty lines of a JSONL file that start in bytes `[from, to)` (a line starts at 0 or after a
 * newline), without their newline (or CR LF): parts of a file cut anywhere give every line once.
 */
export async function* linesStartingIn(path: string, from: number, to: number): AsyncGenerator<Buffer> {
  const handle = await open(path, 'r');
  try {
    let buffer = Buffer.allocUnsafe(READ_BYTES);
    // A line starts at `from` when `from` is 0 or the byte before it is a newline: read from there.
    let position = Math.max(0, from - 1);
    let skipping = from > 0;
    let filled = 0;
    let start = 0;
    /** File offset of buffer[0]. */
    let base = position;
    for (;;) {
      if (filled === buffer.length) {
        // A line longer than the buffer: a larger one, the line's start kept.
        if (start === 0) {
          const larger = Buffer.allocUnsafe(buffer.length * 2);
          buffer.copy(larger, 0, 0, filled);
          buffer = larger;
        } else {
          buffer.copy(buffer, 0, start, filled);
          base += start;
          filled -= start;
          start = 0;
        }
      }
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position);
      position += bytesRead;
      filled += bytesRead;
      const last = bytesRead === 0;
      for (;;) {
        let stop = buffer.indexOf(LF, start);
        if (stop >= filled) stop = -1;
        if (stop === -1) {
          if (!last) break;
          stop = filled;
        }
        if (skipping) skipping = false;
        else {
          if (base + start >= to) return;
          let end = stop;
          if (end > start && buffer[end - 1] === CR) end--;
          if (end > start) yield buffer.subarray(start, end);
        }
        start = stop + 1;
        if (start >= filled) break;
      }
      if (last) return;
      if (start >= filled) {
        base += filled;
        filled = 0;
        start = 0;
      }
    }
  } finally {
    await handle.close();
  }
}
