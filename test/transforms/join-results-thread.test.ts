import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { csvSink } from '../../src/sinks/csv-sink.js';
import { jsonlSink } from '../../src/sinks/jsonl-sink.js';
import { csvSource } from '../../src/sources/csv-source.js';
import { jsonlSource } from '../../src/sources/jsonl-source.js';
import { resultSource } from '../../src/sources/result-source.js';
import { joinResults } from '../../src/transforms/join-results.js';
import { runCli } from '../cli/run-cli.js';
import { tempDir } from '../helpers.js';
import { bigCsv, bigJsonl, type Meant } from '../support/big-table.js';
import { answerLine, errorLine, seeded, shuffle } from '../support/results.js';

// The join's output pass reads a large file source on a worker thread: the rows it writes must be
// the ones a plain reading gives, every source row once, in order, each with its own result.

const dir = tempDir('bp-join-thread-');
const LABELS = ['positive', 'negative', 'neutral'];

/** Results for the rows of a table: most answered, some failed, some with none (shuffled). */
function resultsFor(meant: Meant[], name: string): { file: string; expected: string[][] } {
  const next = seeded(3);
  const lines: string[] = [];
  const expected: string[][] = [];
  meant.forEach((m, i) => {
    const id = `row-${i + 1}`;
    const draw = next();
    if ('rejected' in m) expected.push(['rejected', '']);
    else if (draw < 0.05) expected.push(['missing', '']);
    else if (draw < 0.1) {
      lines.push(errorLine(id, 'http', i));
      expected.push(['failed', '']);
    } else {
      const content = LABELS[i % 3]!;
      lines.push(answerLine({ custom_id: id, content, n: i }));
      expected.push(['ok', content]);
    }
  });
  const file = join(dir, `${name}.jsonl`);
  writeFileSync(file, `${shuffle(lines, next).join('\n')}\n`);
  return { file, expected };
}

/** Joins with the README's composition (resultSource -> joinResults -> sink); the output's bytes. */
async function composed(source: Parameters<typeof joinResults>[0]['source'], results: string, out: string) {
  const sink = out.endsWith('.jsonl') ? jsonlSink(out) : csvSink(out);
  const joined = joinResults({ source, tempDir: dir });
  await pipeline(resultSource([results]), joined, sink);
  return { bytes: readFileSync(out), summary: joined.summary! };
}

let csv: ReturnType<typeof bigCsv>;
let csvResults: ReturnType<typeof resultsFor>;

beforeAll(() => {
  csv = bigCsv(dir);
  csvResults = resultsFor(csv.meant, 'csv-results');
});

describe('joinResults over a source read on a thread', () => {
  it('writes a large CSV (BOM, CRLF, quoted newlines across read chunks, bad rows) with every row once, in order, with its own result; as a stream source does', async () => {
    const threaded = await composed(csv.path, csvResults.file, join(dir, 'threaded.csv'));
    // A stream source is read once and kept on disk for the output pass: no thread.
    const streamed = await composed(
      csvSource(createReadStream(csv.path), { name: csv.path }),
      csvResults.file,
      join(dir, 'streamed.csv'),
    );
    expect(threaded.bytes.equals(streamed.bytes)).toBe(true);
    const rows = parse(threaded.bytes, { columns: true, bom: true }) as Array<Record<string, string>>;
    expect(rows.length).toBe(csv.meant.length);
    expect(rows.map((r) => [r.status, r.content])).toEqual(csvResults.expected);
    csv.meant.forEach((m, i) => {
      const values = 'values' in m ? m.values : { id: '', text: '', n: '' };
      expect([rows[i]!.id, rows[i]!.text, rows[i]!.n]).toEqual([values.id, values.text, values.n]);
    });
    expect(threaded.summary.rows).toBe(csv.meant.length);
    expect(threaded.summary.statuses.rejected).toBe(csv.meant.filter((m) => 'rejected' in m).length);
  });

  it('writes the same bytes from `batchpipe join` as from the composed stages', async () => {
    const out = join(dir, 'cli.csv');
    const result = await runCli([
      'join',
      '--source',
      csv.path,
      '--results',
      csvResults.file,
      '--out',
      out,
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const reference = await composed(csv.path, csvResults.file, join(dir, 'reference.csv'));
    expect(readFileSync(out).equals(reference.bytes)).toBe(true);
  });

  it('writes a large JSON Lines source to JSON Lines with every row once, in order, with its own result; as a stream source does', async () => {
    const jsonl = bigJsonl(dir);
    const results = resultsFor(jsonl.meant, 'jsonl-results');
    const threaded = await composed(jsonl.path, results.file, join(dir, 'threaded.jsonl'));
    const streamed = await composed(
      // A factory of stream sources: read twice on this thread.
      () => jsonlSource(createReadStream(jsonl.path), { name: jsonl.path }),
      results.file,
      join(dir, 'streamed.jsonl'),
    );
    expect(threaded.bytes.equals(streamed.bytes)).toBe(true);
    const rows = threaded.bytes
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(rows.map((r) => [r.status, r.content ?? ''])).toEqual(results.expected);
    jsonl.meant.forEach((m, i) => {
      if ('values' in m) expect([rows[i]!.id, rows[i]!.text]).toEqual([m.values.id, m.values.text]);
    });
  });
});
