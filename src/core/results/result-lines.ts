import { isUtf8 } from 'node:buffer';
import type { Endpoint } from '../../providers/profile.js';
import type { ParseSettings, ResultParser, ResultProblems, ResultRecord } from './result-parser.js';

const LF = 0x0a;
const CR = 0x0d;

/** Result records in order, as result stages hand them to each other. */
export class ResultBatch {
  readonly kind = 'result-batch';
  readonly records: ResultRecord[];

  constructor(records: ResultRecord[]) {
    this.records = records;
  }

  get length(): number {
    return this.records.length;
  }

  item(i: number): ResultRecord {
    return this.records[i]!;
  }
}

/** True for a ResultBatch. */
export function isResultBatch(value: unknown): value is ResultBatch {
  return (value as ResultBatch | null)?.kind === 'result-batch';
}

/** Splits chunks of output and error files into lines and parses each; line numbers restart with each file. */
export class ResultLineParser {
  readonly parser: ResultParser;
  #file = '<results>';
  #line = 0;

  constructor(parser: ResultParser) {
    this.parser = parser;
  }

  startFile(file: string): void {
    this.#file = file;
    this.#line = 0;
  }

  /** Parses the complete lines of `chunk` (all of it when `last`); the rest comes back with more. */
  parse(chunk: Buffer, last: boolean): { batch: ResultBatch | undefined; consumed: number } {
    const consumed = last ? chunk.length : chunk.lastIndexOf(LF) + 1;
    if (consumed === 0) return { batch: undefined, consumed };
    const records: ResultRecord[] = [];
    // Checked whole (natively); only a chunk that fails is checked line by line.
    const utf8 = isUtf8(chunk.subarray(0, consumed));
    let start = 0;
    while (start < consumed) {
      let stop = chunk.indexOf(LF, start);
      if (stop === -1 || stop > consumed) stop = consumed;
      const line = ++this.#line;
      if (stop > start) {
        const to = chunk[stop - 1] === CR ? stop - 1 : stop;
        const good = utf8 || isUtf8(chunk.subarray(start, to));
        const record = this.parser.fromBytes(chunk, start, to, this.#file, line, good);
        if (record) records.push(record);
      }
      start = stop + 1;
    }
    return { batch: new ResultBatch(records), consumed };
  }
}

/**
 * Result files handed on whole (see kHandOverResultFiles): a join that reads them itself, on worker
 * threads, instead of taking their records one by one.
 */
export interface ResultFiles {
  kind: 'result-files';
  /** Output and error files (JSONL), in the order a tie between two results is decided (the later wins). */
  files: string[];
  /** How their lines are parsed; undefined: as the join parses lines written to it. */
  parse: ParseSettings | undefined;
  /** Where unusable lines are counted (the handing stage's own `problems`); undefined: the join's. */
  problems: ResultProblems | undefined;
  /** `rejections.jsonl` files whose rows were rejected before upload. */
  rejections: string[];
  /** The endpoint the run's requests went to, when the stage handing them on knows it. */
  endpoint?: Endpoint;
}

/** True for a ResultFiles item. */
export function isResultFiles(value: unknown): value is ResultFiles {
  return (value as ResultFiles | null)?.kind === 'result-files';
}
