import { isUtf8 } from 'node:buffer';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { BatchpipeError, type ErrorCode, type ErrorContext, errorData } from '../../errors.js';
import { moduleWorker } from '../../internal/module-worker.js';
import { readError } from '../../internal/read-error.js';
import { type HashJoin, spillInvalid, spillResult } from '../join/hash-join.js';
import { SpillFile } from '../join/spill-file.js';
import { type CellEncoding, CellLayout, type CellSpec, cellEncoder, cellWriter } from './result-cells.js';
import { ResultParser, type ResultProblems } from './result-parser.js';

/** Below this many bytes of results, threads cost more than they save. */
const PARALLEL_MIN_BYTES = 16 * 1024 * 1024;
/** Threads a join's results are parsed on, at most. */
const MAX_THREADS = 4;
const READ_BYTES = 1024 * 1024;
/**
 * A thread holds little (a read buffer and a block per partition, off the JS heap); small heaps keep
 * its garbage from growing the process (peak RSS is all threads together).
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 64 };
const LF = 0x0a;
const CR = 0x0d;

/** One thread's share: the result lines that start in [start, end) of the files taken end to end. */
export interface RangeTask {
  files: string[];
  sizes: number[];
  start: number;
  end: number;
  partitions: number;
  /** Rows per range partition, when the join goes by row ranges (else 0). */
  rangeRows: number;
  /** The spill file to write (its directory exists). */
  spill: string;
  /** Where to spill invalid answers for re-ask requests, when the join writes them. */
  invalid: string | undefined;
  labels: string[] | undefined;
  schema: Record<string, unknown> | undefined;
  badLines: 'report' | 'fail';
  /** The join's cell layout and encoding, so the threads store what the output pass reads. */
  cells: CellSpec;
  encoding: CellEncoding;
}

/** What a thread spilled. */
export interface RangeReport {
  index: number[][];
  /** The invalid answers' spill index, when `invalid` was given. */
  invalidIndex: number[][] | undefined;
  results: number;
  problems: { count: number; first: Array<{ code: ErrorCode; message: string; context: ErrorContext }> };
}

export interface ScatterOptions {
  cells: CellSpec;
  encoding: CellEncoding;
  labels: string[] | undefined;
  schema: Record<string, unknown> | undefined;
  badLines: 'report' | 'fail';
  /** Problems are gathered here (count, and the first ones in full). */
  problems: ResultProblems;
  /** Runs beside the parsing (the key pass), so both cores work. */
  meanwhile: () => Promise<void>;
}

/**
 * Parses result files into the join's partitions on worker threads, each taking an equal byte range
 * (cut at line starts, so lines keep their file and line number), while `meanwhile` runs here. The
 * threads' spill files join in range order, so "the later line wins a tie" still means later in the
 * files. Small inputs are parsed on this thread.
 */
export async function scatterResults(
  join_: HashJoin,
  files: string[],
  options: ScatterOptions,
): Promise<boolean> {
  const sizes: number[] = [];
  for (const file of files) {
    try {
      sizes.push((await stat(file)).size);
    } catch (error) {
      throw readError(error, file);
    }
  }
  const total = sizes.reduce((a, b) => a + b, 0);
  const threads = Math.min(MAX_THREADS, availableParallelism(), Math.ceil(total / PARALLEL_MIN_BYTES));
  if (threads < 2) return false;
  await join_.start();
  const tasks: RangeTask[] = [];
  for (let t = 0; t < threads; t++) {
    tasks.push({
      files,
      sizes,
      start: Math.floor((total * t) / threads),
      end: Math.floor((total * (t + 1)) / threads),
      partitions: join_.partitions,
      rangeRows: join_.rangeRows,
      spill: join(join_.dir!, `results-${t}`),
      invalid: join_.reasks ? join(join_.dir!, `invalid-${t}`) : undefined,
      labels: options.labels,
      schema: options.schema,
      badLines: options.badLines,
      cells: options.cells,
      encoding: options.encoding,
    });
  }
  const workers = tasks.map(startWorker);
  try {
    const [reports] = await Promise.all([Promise.all(workers.map((w) => w.report)), options.meanwhile()]);
    reports.forEach((report, t) => {
      const task = tasks[t]!;
      const invalid =
        task.invalid && report.invalidIndex
          ? SpillFile.written(task.invalid, report.invalidIndex)
          : undefined;
      join_.adopt(SpillFile.written(task.spill, report.index), report, invalid);
      const problems = options.problems;
      problems.count += report.problems.count;
      for (const p of report.problems.first)
        if (problems.first.length < 100)
          problems.first.push(new BatchpipeError(p.code, p.message, p.context));
    });
    return true;
  } finally {
    await Promise.allSettled(workers.map((w) => w.worker.terminate()));
  }
}

function startWorker(task: RangeTask): { worker: Worker; report: Promise<RangeReport> } {
  const worker = moduleWorker(import.meta.url, 'result-worker', {
    workerData: task,
    resourceLimits: WORKER_LIMITS,
  });
  const report = new Promise<RangeReport>((resolve, reject) => {
    worker.once(
      'message',
      (message: { report?: RangeReport; error?: RangeReport['problems']['first'][number] }) => {
        if (message.report) resolve(message.report);
        else {
          const e = message.error!;
          reject(new BatchpipeError(e.code, e.message, e.context));
        }
      },
    );
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`a result parsing thread stopped (exit code ${code})`)));
  });
  return { worker, report };
}

/** A thread's work: parse its range, spill every record, report the index. */
export async function spillRange(task: RangeTask): Promise<RangeReport> {
  const parser = new ResultParser({ labels: task.labels, schema: task.schema, badLines: task.badLines });
  const spill = new SpillFile(task.spill, task.partitions);
  const invalid = task.invalid ? new SpillFile(task.invalid, task.partitions) : undefined;
  const layout = new CellLayout(task.cells);
  const encode = cellEncoder(task.encoding);
  const write = cellWriter(task.encoding);
  let results = 0;
  let offset = 0;
  for (let f = 0; f < task.files.length; f++) {
    const file = task.files[f]!;
    const size = task.sizes[f]!;
    const from = Math.max(task.start - offset, 0);
    const to = Math.min(task.end - offset, size);
    offset += size;
    if (from >= to) continue;
    await eachLine(file, from, to, (bytes, start, end, line, utf8) => {
      const record = parser.fromBytes(bytes, start, end, file, line, utf8);
      if (!record) return;
      results++;
      if (invalid && record.status === 'invalid_output') {
        const kept = spillInvalid(invalid, record);
        const spilled = spillResult(spill, record, layout, encode, write, task.rangeRows);
        return kept && spilled ? Promise.all([kept, spilled]).then(() => undefined) : (kept ?? spilled);
      }
      return spillResult(spill, record, layout, encode, write, task.rangeRows);
    });
  }
  await spill.flush();
  await spill.close();
  await invalid?.flush();
  await invalid?.close();
  const problems = {
    count: parser.problems.count,
    first: parser.problems.first.map(errorData),
  };
  return { index: spill.index, invalidIndex: invalid?.index, results, problems };
}

/**
 * Calls `use` for each line that starts in [from, to) of a file, with its 1-based line number. The
 * range is first moved to line starts (just after the newline at or after `from - 1`, and the same
 * for `to`), so neighbouring ranges meet exactly; the newlines before it are counted for the numbers.
 */
async function eachLine(
  file: string,
  from: number,
  to: number,
  /**
   * Takes the line `bytes[start, end)` (without its line end; the bytes are valid only during the
   * call) and whether it is valid UTF-8. Returns a promise only when the caller should wait (the
   * spill is writing).
   */
  use: (bytes: Buffer, start: number, end: number, line: number, utf8: boolean) => Promise<void> | undefined,
): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw readError(error, file);
  }
  try {
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    const read = async (position: number, length = READ_BYTES): Promise<Buffer> => {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(length, READ_BYTES), position);
      return buffer.subarray(0, bytesRead);
    };
    const lineStart = async (at: number): Promise<number> => {
      if (at === 0) return 0;
      for (let position = at - 1; ; ) {
        const chunk = await read(position);
        if (chunk.length === 0) return position;
        const nl = chunk.indexOf(LF);
        if (nl !== -1) return position + nl + 1;
        position += chunk.length;
      }
    };
    const first = await lineStart(from);
    const stop = await lineStart(to);
    if (first >= stop) return;
    let line = 1;
    for (let position = 0; position < first; ) {
      const chunk = await read(position, first - position);
      for (let at = chunk.indexOf(LF); at !== -1; at = chunk.indexOf(LF, at + 1)) line++;
      position += chunk.length;
    }
    // One reused buffer: the unfinished line is moved to its front and the next read lands after it.
    // (A Buffer.concat per read made a fresh 1 MiB buffer each time, garbage the collector counts only
    // as external memory: peak RSS grew with the size of the result files.)
    let work = Buffer.allocUnsafe(2 * READ_BYTES);
    let carried = 0;
    for (let position = first; position < stop; ) {
      if (work.length - carried < READ_BYTES) {
        // A line longer than a read: make room for it and the next read.
        const bigger = Buffer.allocUnsafe(2 * work.length);
        work.copy(bigger, 0, 0, carried);
        work = bigger;
      }
      const { bytesRead } = await handle.read(work, carried, Math.min(READ_BYTES, stop - position), position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const filled = carried + bytesRead;
      const end = position >= stop ? filled : work.lastIndexOf(LF, filled - 1) + 1;
      // Checked whole (natively); only a read that fails is checked line by line.
      const utf8 = isUtf8(work.subarray(0, end));
      for (let s = 0; s < end; ) {
        let nl = work.indexOf(LF, s);
        if (nl === -1 || nl >= end) nl = end;
        const lineEnd = nl > s && work[nl - 1] === CR ? nl - 1 : nl;
        if (lineEnd > s) {
          const waiting = use(work, s, lineEnd, line, utf8 || isUtf8(work.subarray(s, lineEnd)));
          if (waiting) await waiting;
        }
        line++;
        s = nl + 1;
      }
      // The unfinished line moves to the front once this read's lines are used (they point into `work`).
      carried = filled - end;
      if (carried > 0) work.copy(work, 0, end, filled);
    }
  } finally {
    await handle.close();
  }
}
