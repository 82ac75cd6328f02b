import { BatchpipeError } from '../../errors.js';
import { readChunks } from '../../internal/input.js';
import { LineSplitter } from '../../internal/line-splitter.js';

/** A row rejected before upload, as `rejections.jsonl` records it. */
export interface RejectedRow {
  row: number;
  custom_id: string | null;
  code: string;
  message: string;
}

/** Longest rejection line accepted. */
const MAX_LINE = 64 * 1024 * 1024;

/**
 * Walks `rejections.jsonl` files (written in row order by prepare) beside the rows of a source:
 * `at(row)` answers for ascending row numbers, reading ahead a chunk at a time, so memory stays at
 * one chunk. Files out of row order (hand-made) are read whole into a map instead.
 */
export class RejectionCursor {
  readonly #files: readonly string[];
  #chunks: AsyncGenerator<{ file: string; lines: string[]; first: number }> | undefined;
  #queue: RejectedRow[] = [];
  #head = 0;
  #ended = false;
  #lastRow = 0;
  #byRow: Map<number, RejectedRow> | undefined;

  constructor(files: readonly string[]) {
    this.#files = files;
    if (files.length === 0) this.#ended = true;
  }

  /** The rejection of a row, if any. Rows must be asked for in ascending order. */
  at(row: number): RejectedRow | undefined | Promise<RejectedRow | undefined> {
    if (this.#byRow) return this.#byRow.get(row);
    for (;;) {
      while (this.#head < this.#queue.length) {
        const next = this.#queue[this.#head]!;
        if (next.row > row) return undefined;
        this.#head++;
        if (next.row === row) return next;
      }
      if (this.#ended) return undefined;
      return this.#fill().then(() => this.at(row));
    }
  }

  async #fill(): Promise<void> {
    this.#chunks ??= this.#read();
    const { value, done } = await this.#chunks.next();
    this.#queue = [];
    this.#head = 0;
    if (done) {
      this.#ended = true;
      return;
    }
    for (let i = 0; i < value.lines.length; i++) {
      const rejected = parse(value.lines[i]!, value.file, value.first + i);
      if (!rejected) continue;
      if (rejected.row < this.#lastRow) {
        await this.#chunks.return(undefined);
        this.#byRow = await loadAll(this.#files);
        return;
      }
      this.#lastRow = rejected.row;
      this.#queue.push(rejected);
    }
  }

  async *#read(): AsyncGenerator<{ file: string; lines: string[]; first: number }> {
    for (const file of this.#files) {
      const splitter = new LineSplitter(file, MAX_LINE);
      for await (const chunk of readChunks(file, file)) yield batch(file, splitter.split(chunk, false));
      yield batch(file, splitter.split(Buffer.alloc(0), true));
    }
  }
}

function batch(file: string, lines: Array<{ text: string; line: number }>) {
  return { file, lines: lines.map((l) => l.text), first: lines[0]?.line ?? 0 };
}

async function loadAll(files: readonly string[]): Promise<Map<number, RejectedRow>> {
  const byRow = new Map<number, RejectedRow>();
  for (const file of files) {
    const splitter = new LineSplitter(file, MAX_LINE);
    const add = (lines: Array<{ text: string; line: number }>) => {
      for (const { text, line } of lines) {
        const rejected = parse(text, file, line);
        if (rejected && !byRow.has(rejected.row)) byRow.set(rejected.row, rejected);
      }
    };
    for await (const chunk of readChunks(file, file)) add(splitter.split(chunk, false));
    add(splitter.split(Buffer.alloc(0), true));
  }
  return byRow;
}

function parse(text: string, file: string, line: number): RejectedRow | undefined {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BatchpipeError('BP_INPUT_PARSE', `rejection line is not JSON: ${(error as Error).message}`, {
      file,
      line,
    });
  }
  const r = value as Partial<RejectedRow> | null;
  if (r === null || typeof r !== 'object' || !Number.isInteger(r.row) || typeof r.code !== 'string') {
    throw new BatchpipeError(
      'BP_INPUT_PARSE',
      'expected a rejection {row, custom_id, code, message} as prepare writes it',
      { file, line },
    );
  }
  return {
    row: r.row!,
    custom_id: typeof r.custom_id === 'string' ? r.custom_id : null,
    code: r.code,
    message: typeof r.message === 'string' ? r.message : r.code,
  };
}
