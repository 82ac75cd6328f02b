import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BatchpipeError } from '../errors.js';
import type { Connection } from '../providers/connection.js';
import type { ProviderProfile } from '../providers/profile.js';
import type { RunState } from '../run/batch-run.js';
import { RESULTS_FILE } from '../run/run-dir.js';
import { writeResults } from '../run/run-results.js';
import type { PreparedSummary } from '../run/sharder.js';
import { createOrResumeRun, type RunOptions } from '../run/start-run.js';
import { joinTable } from './join-table.js';
import { stageRequestFile } from './stage-request-file.js';

/** Requests a test-model run sends by default: one test batch's worth (the documented 100 lines). */
export const TEST_SAMPLE_DEFAULT = 100;

/** What a test-model run found: the provider's verdict on the file's format, not on any answer. */
export interface TestModelReport {
  state: RunState;
  /** Requests sent (the first of the prepared ones, within the test batches' limits). */
  requests: number;
  /** The test model and endpoint the requests were rewritten to. */
  model: string;
  endpoint: string;
  /** The test run's directory (its manifest, request files and downloads). */
  runDir: string;
  batches: Array<{
    id: string | null;
    status: string | null;
    request_counts: { total: number; completed: number; failed: number } | null;
    /** The batch's own errors (a file-level failure: line, code, message). */
    errors: Array<{ code: string | null; line: number | null; message: string | null }>;
  }>;
  /** Each failed request, joined to its source row (1-based, as the table numbers rows). */
  failures: Array<{ row: number; custom_id: string | null; code: string | null; message: string | null }>;
  /** Said with every report: the test model checks the file's format, not the model's answers. */
  note: string;
}

export const TEST_MODEL_NOTE =
  "the test model checks the requests' format at the provider, at no inference cost; it says nothing about the model's answers";

/**
 * The provider's free format check on a table's requests: the first `sample` prepared requests, rewritten
 * to the test model on its endpoint (`batch-test-model` on `/v1/chat/ds-test`), in files within the test
 * batches' limits (100 lines and 1,000,000 bytes each, at most 2 at once: so at most 200 requests),
 * submitted as a durable run of their own; their failures are joined back to their source rows.
 */
export async function testModelRun(
  input: string,
  prepared: { dir: string; summary: PreparedSummary },
  connection: Connection,
  sample: number,
  runOptions: RunOptions & { runsDir: string },
  table: { idColumn?: string | undefined } & Record<string, unknown>,
): Promise<TestModelReport> {
  const profile = connection.profile;
  const test = profile.dryRun;
  if (!test)
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `option "testModel": ${profile.title} (provider "${profile.name}") documents no test model; DashScope's is batch-test-model on /v1/chat/ds-test`,
      { option: 'testModel' },
    );
  const most = test.maxLines * test.maxConcurrent;
  if (!Number.isInteger(sample) || sample < 1 || sample > most)
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `option "testSample": expected a whole number from 1 to ${most} (${test.maxLines} requests per test batch, ${test.maxConcurrent} test batches at once), got ${JSON.stringify(sample)}`,
      { option: 'testSample' },
    );
  if (!test.documented)
    runOptions.onEvent?.({
      type: 'note',
      message: `warning: ${profile.title} does not document the test model (${test.model} on ${test.endpoint}; the international page does): it may refuse it`,
    });
  const file = join(prepared.dir, 'test-model.requests.jsonl');
  const requests = await writeSample(prepared, file, sample, test);
  const testProfile: ProviderProfile = {
    ...profile,
    limits: { ...profile.limits, maxLinesPerFile: test.maxLines, maxBytesPerFile: test.maxBytes },
  };
  // The shards are cut to the test batches' limits (the sharder reads the connection's profile).
  const staged = await stageRequestFile(
    file,
    runOptions.runsDir,
    { ...connection, profile: testProfile },
    testProfile,
  );
  const run = await createOrResumeRun(staged.dir, staged.summary, connection, runOptions, true);
  try {
    const state = await run.wait();
    const report: TestModelReport = {
      state,
      requests,
      model: test.model,
      endpoint: test.endpoint,
      runDir: run.dir,
      batches: run.manifest.jobs.map((job) => ({
        id: job.batch_id,
        status: job.status,
        request_counts: job.request_counts,
        errors: (job.errors ?? []).map((e) => ({ code: e.code, line: e.line, message: e.message })),
      })),
      failures: [],
      note: TEST_MODEL_NOTE,
    };
    if (state !== 'done') return report;
    const results = join(run.dir, RESULTS_FILE);
    await writeResults(run, results);
    // The source read again, every row once in order: a failed request's row is its position.
    const joined = join(run.dir, 'test-model.joined.jsonl');
    await joinTable({
      source: input,
      results: [results],
      out: joined,
      outFormat: 'jsonl',
      allowStale: true,
      ...table,
    });
    report.failures = await failedRows(joined, table.idColumn);
    await rm(joined, { force: true });
    return report;
  } finally {
    await run.close();
  }
}

/**
 * Writes the first `sample` prepared requests, rewritten to the test model, as long as they fit in the
 * test batches: each at most `maxLines` lines and `maxBytes` bytes, at most `maxConcurrent` of them.
 */
async function writeSample(
  prepared: { dir: string; summary: PreparedSummary },
  file: string,
  sample: number,
  test: NonNullable<ProviderProfile['dryRun']>,
): Promise<number> {
  await mkdir(prepared.dir, { recursive: true });
  const out = createWriteStream(file);
  let written = 0;
  let batches = 1;
  let lines = 0;
  let bytes = 0;
  try {
    outer: for (const shard of prepared.summary.shards) {
      const reader = createInterface({
        input: createReadStream(join(prepared.dir, shard.file)),
        crlfDelay: Infinity,
      });
      for await (const line of reader) {
        if (line === '') continue;
        const request = JSON.parse(line) as { url?: unknown; body?: Record<string, unknown> };
        request.url = test.endpoint;
        request.body = { ...request.body, model: test.model };
        const text = `${JSON.stringify(request)}\n`;
        const size = Buffer.byteLength(text);
        if (lines === test.maxLines || bytes + size > test.maxBytes) {
          if (batches === test.maxConcurrent || lines === 0) {
            reader.close();
            break outer;
          }
          batches++;
          lines = 0;
          bytes = 0;
        }
        if (!out.write(text)) await once(out, 'drain');
        lines++;
        bytes += size;
        written++;
        if (written === sample) {
          reader.close();
          break outer;
        }
      }
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  if (written === 0)
    throw new BatchpipeError(
      'BP_NOTHING_TO_SUBMIT',
      `no request fits a test batch (${test.maxLines} lines, ${test.maxBytes} bytes)`,
    );
  return written;
}

/** The joined sample's rows that did not pass: their row number, custom_id, code and message. */
async function failedRows(path: string, idColumn: string | undefined): Promise<TestModelReport['failures']> {
  const failures: TestModelReport['failures'] = [];
  let row = 0;
  const reader = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of reader) {
    if (line === '') continue;
    row++;
    const record = JSON.parse(line) as Record<string, unknown>;
    const status = record.status;
    if (status === 'ok' || status === 'missing' || status === 'truncated') continue;
    failures.push({
      row,
      // The custom_id as the request had it: the id column's value, or the row's own (DESIGN section 6).
      custom_id: idColumn === undefined ? `row-${row}` : String(record[idColumn] ?? ''),
      code: typeof record.error_code === 'string' ? record.error_code : null,
      message: typeof record.error_message === 'string' ? record.error_message : null,
    });
  }
  return failures;
}
