import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BufferedFile } from '../internal/buffered-file.js';
import { makeParentDir } from '../internal/durable-write.js';
import type { Rejection } from '../types.js';
import type { BatchRun } from './batch-run.js';
import type { JobRecord, RunManifest } from './manifest.js';
import { customIdOf, jsonlBuffers, jsonlLines } from './request-ids.js';
import { REJECTIONS_FILE } from './sharder.js';

/** One result line as the provider wrote it (`{id, custom_id, response, error}`), or as batchpipe made it
 * for a request that got no line (expired, cancelled, or in a batch that failed). */
export interface ResultLine {
  custom_id: string;
  response?: { status_code?: number; request_id?: string; body?: unknown } | null;
  error?: { code?: string | null; message?: string | null } | null;
  [field: string]: unknown;
}

const OUTPUT = 0;
const ERROR = 1;
const UNSENT = 2;
const NEWLINE = Buffer.from('\n');

/**
 * Every request of a finished run exactly once, with its final result: the line of its last attempt
 * (a retried request's earlier error line is dropped), or a made-up error line when no attempt
 * produced one (`batch_expired`, `batch_cancelled`, `batch_failed` with the batch's own errors).
 * Rejections from before upload come first unless `rejections: false`. Memory is one shard's ids.
 */
export async function* runResults(
  runDir: string,
  manifest: RunManifest,
  options: { rejections?: boolean } = {},
): AsyncGenerator<ResultLine | Rejection> {
  const rejections = join(runDir, REJECTIONS_FILE);
  if (options.rejections !== false && existsSync(rejections)) {
    for await (const line of jsonlLines(rejections)) {
      const { row, ...rest } = JSON.parse(line) as Omit<Rejection, 'kind' | 'index'> & { row: number };
      yield { kind: 'rejection', index: row, ...rest };
    }
  }
  for await (const line of finalLines(runDir, manifest)) {
    yield (typeof line === 'string' ? JSON.parse(line) : JSON.parse(line.toString('utf8'))) as ResultLine;
  }
}

/** Writes a finished run's final result line per request (rejections stay in rejections.jsonl). */
export function writeResults(run: BatchRun, path: string): Promise<number> {
  return writeFinalLines(run.dir, run.manifest, path);
}

/** Writes every request's final line to `path` (bytes as the provider wrote them); returns how many. */
export async function writeFinalLines(runDir: string, manifest: RunManifest, path: string): Promise<number> {
  await makeParentDir(path);
  const file = new BufferedFile(path);
  let lines = 0;
  try {
    for await (const line of finalLines(runDir, manifest)) {
      lines++;
      let pending =
        typeof line === 'string'
          ? file.append(`${line}\n`, Buffer.byteLength(line) + 1)
          : file.appendBytes(line, 0, line.length);
      if (pending) await pending;
      if (typeof line !== 'string') {
        pending = file.appendBytes(NEWLINE, 0, 1);
        if (pending) await pending;
      }
    }
    await file.close();
  } catch (error) {
    await file.discard();
    throw error;
  }
  return lines;
}

/**
 * The final line of every request, shard by shard: provider lines as byte views (valid until the
 * next one), made-up lines as text.
 */
async function* finalLines(runDir: string, manifest: RunManifest): AsyncGenerator<Buffer | string> {
  for (const shard of manifest.shards) {
    const jobs = manifest.jobs
      .filter((j) => j.shard === shard.file && j.state === 'done')
      .sort((a, b) => a.attempt - b.attempt);
    // Where each request's final line is: attempt * 3 + (output | error | unsent).
    const final = new Map<string, number>();
    for (const job of jobs) {
      const at = job.attempt * 3;
      for await (const line of jsonlBuffers(join(runDir, job.input))) {
        const id = customIdOf(line);
        if (id !== undefined) final.set(id, at + UNSENT);
      }
      const fromOutput = new Set<string>();
      if (job.output_path) {
        for await (const line of jsonlBuffers(join(runDir, job.output_path))) {
          const id = customIdOf(line);
          if (id === undefined || !final.has(id)) continue;
          final.set(id, at + OUTPUT);
          fromOutput.add(id);
        }
      }
      if (job.error_path) {
        for await (const line of jsonlBuffers(join(runDir, job.error_path))) {
          const id = customIdOf(line);
          if (id !== undefined && final.has(id) && !fromOutput.has(id)) final.set(id, at + ERROR);
        }
      }
    }
    for (const job of jobs) {
      const at = job.attempt * 3;
      for (const [kind, path] of [
        [OUTPUT, job.output_path],
        [ERROR, job.error_path],
      ] as const) {
        if (!path) continue;
        for await (const line of jsonlBuffers(join(runDir, path))) {
          const id = customIdOf(line);
          if (id === undefined || final.get(id) !== at + kind) continue;
          final.delete(id);
          yield line;
        }
      }
      for await (const line of jsonlBuffers(join(runDir, job.input))) {
        const id = customIdOf(line);
        if (id === undefined || final.get(id) !== at + UNSENT) continue;
        final.delete(id);
        yield JSON.stringify(unsentLine(id, job));
      }
    }
  }
}

/** The line for a request no attempt ran. */
function unsentLine(custom_id: string, job: JobRecord): ResultLine {
  const batch = job.batch_id ?? 'its batch';
  if (job.status === 'expired')
    return {
      custom_id,
      response: null,
      error: { code: 'batch_expired', message: `${batch} expired before this request ran` },
    };
  if (job.status === 'cancelled')
    return {
      custom_id,
      response: null,
      error: { code: 'batch_cancelled', message: `${batch} was cancelled before this request ran` },
    };
  if (job.status === 'failed') {
    const why = (job.errors ?? [])
      .slice(0, 3)
      .map((e) => `${e.code ?? 'error'}${e.line ? ` (line ${e.line})` : ''}: ${e.message ?? ''}`);
    return {
      custom_id,
      response: null,
      error: {
        code: 'batch_failed',
        message: `${batch} failed before running: ${why.join('; ') || 'no reason given'}`,
      },
    };
  }
  return {
    custom_id,
    response: null,
    error: {
      code: 'BP_RESULT_MISSING',
      message: `${batch} ended ${job.status ?? ''} without a line for this request`,
    },
  };
}
