import type { Readable } from 'node:stream';
import { z } from 'zod';
import { type ResultBatch, type ResultFiles, ResultLineParser } from '../core/results/result-lines.js';
import {
  ParseResultsFields,
  ResultParser,
  type ResultProblems,
  type ResultRecord,
} from '../core/results/result-parser.js';
import { inputName, type SourceInput } from '../internal/input.js';
import { parseOptions } from '../options.js';
import { kHandOverResultFiles } from '../streams/batch-protocol.js';
import { BatchReadable } from '../streams/batch-readable.js';

const ResultSourceOptions = z.strictObject({
  /** Names used in errors for stream inputs, one per input. Default: the paths, or "<stream>". */
  names: z.array(z.string().min(1)).optional(),
  ...ParseResultsFields,
});
export type ResultSourceOptions = z.input<typeof ResultSourceOptions>;

/** The stream resultSource returns: `problems` counts lines that could not be used. */
export interface ResultSourceStream extends Readable {
  readonly problems: ResultProblems;
}

/** Longest result line accepted (an embedding of a few thousand numbers is well under it). */
const MAX_LINE_BYTES = 64 * 1024 * 1024;

/**
 * Reads output and error files (JSONL) as ResultRecords, file after file: the same parsing as
 * `parseResults`, without a stream hop per line. Piped into joinResults, files (not streams) are
 * handed on whole: the join parses them on worker threads while it reads its source.
 */
export function resultSource(
  input: SourceInput | SourceInput[],
  options: ResultSourceOptions = {},
): ResultSourceStream {
  const { names, ...parse } = parseOptions(ResultSourceOptions, options, 'resultSource');
  const inputs = Array.isArray(input) ? input : [input];
  const files = inputs.map((one, i) => inputName(one, names?.[i]));
  const parser = new ResultParser(parse);
  return new ResultSource(inputs, files, new ResultLineParser(parser), parse, parser.problems);
}

class ResultSource extends BatchReadable<ResultRecord, ResultBatch> implements ResultSourceStream {
  readonly problems: ResultProblems;
  readonly #paths: string[] | undefined;
  readonly #parse: ResultFiles['parse'];
  #handOver: ResultFiles | undefined;
  #started = false;

  constructor(
    inputs: SourceInput[],
    files: string[],
    lines: ResultLineParser,
    parse: ResultFiles['parse'],
    problems: ResultProblems,
  ) {
    super(inputs, files, lines, MAX_LINE_BYTES);
    this.problems = problems;
    this.#parse = parse;
    // Only files can be handed on: a stream is read once, here.
    const paths = inputs.map((one) =>
      typeof one === 'string' ? one : one instanceof URL ? one.pathname : undefined,
    );
    this.#paths = paths.every((p) => p !== undefined) ? (paths as string[]) : undefined;
  }

  [kHandOverResultFiles](): boolean {
    if (this.#started || !this.#paths) return false;
    this.#handOver = {
      kind: 'result-files',
      files: this.#paths,
      parse: this.#parse,
      problems: this.problems,
      rejections: [],
    };
    return true;
  }

  override _read(): void {
    this.#started = true;
    const handOver = this.#handOver;
    if (!handOver) {
      super._read();
      return;
    }
    this.#handOver = undefined;
    this.push(handOver);
    this.push(null);
  }
}
