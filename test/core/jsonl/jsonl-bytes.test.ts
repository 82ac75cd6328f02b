/**
 * JSON Lines rows are read from their bytes (scanObjectLine): a string cell's bytes are copied into
 * the request, and a value is decoded only when asked for. What comes out must be exactly what the
 * plain reference gives, JSON.parse of each line, then `textOf` and JSON.stringify of each cell: the
 * cells, the rows, the rejections, the row hashes and the request lines, byte for byte, on lines that
 * hold every escape, lone surrogates, emoji, nested values, numbers such as 1e400 and -0, nulls,
 * missing, repeated and escaped member names, lines that are not objects, a BOM, CRLF and blank lines.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REQUEST_KEYS_FILE } from '../../../src/cache/request-reuse.js';
import {
  COPY_ESCAPES,
  COPY_STRING,
  ESCAPED_STRING,
  LineMembers,
  scanObjectLine,
} from '../../../src/core/jsonl/json-line-scan.js';
import { JsonlReader } from '../../../src/core/jsonl/jsonl-reader.js';
import { RowHash, RowHasher } from '../../../src/core/requests/row-hash.js';
import { columnRef } from '../../../src/core/rows/column-ref.js';
import { type RowBatch, textOf } from '../../../src/core/rows/row-batch.js';
import { DEFAULT_JSONL_SETTINGS, readRowBatches } from '../../../src/core/tables/table-reader.js';
import { jsonlSource, prepare, shardRequests, toRequests, validateRequests } from '../../../src/index.js';
import { ByteWriter } from '../../../src/internal/byte-writer.js';
import { deeperThan } from '../../../src/internal/json-depth.js';
import { parseJsonExact } from '../../../src/internal/parse-json.js';
import { WarningLog } from '../../../src/internal/warnings.js';
import { EDGE_LINES } from '../../fixtures/jsonl-edge-lines.js';
import { tempDir } from '../../helpers.js';
import { definedKey } from '../../support/request-keys.js';

const dir = tempDir('bp-jsonl-bytes-');
/** The columns asked for: the template's, an id, a dotted path, a name no row has, a data `__proto__`. */
const COLUMNS = [
  'id',
  'title',
  'review',
  'title.nested',
  'title.n',
  '__proto__',
  'absent',
  'ti\u0074le',
  '名前',
  '😀',
  '\ud800',
];

/** The edge lines as a file: a BOM first, some lines ended by CRLF, blank lines between some. */
function edgeFile(name: string, copies = 1): string {
  let body = '\uFEFF';
  for (let c = 0; c < copies; c++)
    EDGE_LINES.forEach((line, k) => {
      body += k % 3 === 0 ? `${line}\r\n` : k % 5 === 0 ? `${line}\n\n  \n` : `${line}\n`;
    });
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
}

/** What JSON.parse makes of a line, as the source has always read it: its object, or a rejection code. */
function reference(text: string): { object: Record<string, unknown> } | { code: string } {
  let value: unknown;
  try {
    value = parseJsonExact(text).value;
  } catch (error) {
    return { code: (error as { code?: string }).code ?? 'BP_INPUT_PARSE' };
  }
  if (value !== null && typeof value === 'object' && deeperThan(value)) return { code: 'BP_INPUT_PARSE' };
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { code: 'BP_ROW_NOT_OBJECT' };
  return { object: value as Record<string, unknown> };
}

/** A cell as a template writes it: JSON.stringify of its text, without the quotes. */
const jsonText = (value: unknown) => Buffer.from(JSON.stringify(textOf(value)).slice(1, -1), 'utf8');

async function batchesOf(file: string): Promise<RowBatch[]> {
  const batches: RowBatch[] = [];
  const reader = new JsonlReader(file, DEFAULT_JSONL_SETTINGS, new WarningLog());
  for await (const batch of readRowBatches(file, file, reader)) batches.push(batch);
  return batches;
}

/** Every entry of the batches, in order, as its batch and its place there. */
function entriesOf(batches: RowBatch[]): Array<readonly [RowBatch, number]> {
  return batches.flatMap((batch) => Array.from({ length: batch.length }, (_, i) => [batch, i] as const));
}

describe('JSON Lines rows read from their bytes', () => {
  it('give every cell, row and rejection JSON.parse gives, and write each cell as JSON.stringify does', async () => {
    const file = edgeFile('edge.jsonl');
    const lines = readFileSync(file, 'utf8')
      .slice(1)
      .split('\n')
      .map((l) => l.replace(/\r$/, ''))
      .filter((l) => l.trim() !== '');
    const batches = await batchesOf(file);
    const entries = entriesOf(batches);
    expect(entries).toHaveLength(EDGE_LINES.length);
    const hasher = new RowHasher(['title', 'review']);
    const out = new ByteWriter(256);
    let scannedRows = 0;
    for (const [k, [batch, i]] of entries.entries()) {
      const expected = reference(lines[k]!);
      const at = `line ${k + 1}: ${lines[k]!.slice(0, 60)}`;
      if ('code' in expected) {
        expect(batch.rejection(i)?.code, at).toBe(expected.code);
        continue;
      }
      expect(batch.rejection(i), at).toBeUndefined();
      for (const name of COLUMNS) {
        const ref = batch.ref(name)!;
        const real = columnRef(name);
        expect(batch.has(i, ref), `${at} has ${name}`).toBe(real.has(expected.object));
        expect(batch.value(i, ref), `${at} value ${name}`).toEqual(real.get(expected.object));
        out.pos = 0;
        batch.writeJsonText(i, ref, out);
        const written = Buffer.from(out.buffer.subarray(0, out.pos));
        expect(written.toString('latin1'), `${at} text of ${name}`).toBe(
          jsonText(real.get(expected.object)).toString('latin1'),
        );
      }
      // The row hash a join makes of the row is the hash of those same bytes.
      const hash = new RowHash();
      for (const name of ['title', 'review']) {
        const bytes = jsonText(columnRef(name).get(expected.object));
        hash.cell(bytes, 0, bytes.length);
      }
      expect(hasher.hash(batch, i), `${at} row hash`).toBe(hash.value());
      expect(batch.values(i), at).toEqual(expected.object);
      expect(batch.keys(i), at).toEqual(Object.keys(expected.object));
      scannedRows++;
    }
    expect(scannedRows).toBeGreaterThan(25);
  });

  it('give the column names Object.keys gives, asked before anything else (from the scan, not a parse)', async () => {
    const more = [
      '{"b":1,"2":"x","1":"y","01":"z","4294967295":0,"a":2}',
      '{"b":1,"2":"x","1":"y","01":"z","4294967295":0,"a":2}',
      '{"c":1,"2":"x","1":"y","01":"z","4294967295":0,"a":2}',
      '{"id":1,"title":"t","title":"again","review":"r"}',
      '{"id":1,"title":"t","review":"r"}',
      '{"id":1,"title":"t","review":"r"}',
      '{"ab":1,"c":2}',
      '{"a":1,"bc":2}',
    ];
    const file = join(dir, 'names.jsonl');
    writeFileSync(file, `${[...EDGE_LINES, ...more].join('\n')}\n`);
    const batches = await batchesOf(file);
    const entries = entriesOf(batches);
    [...EDGE_LINES, ...more].forEach((line, k) => {
      const [batch, i] = entries[k]!;
      const expected = reference(line);
      expect(batch.keys(i), `line ${k + 1}: ${line.slice(0, 60)}`).toEqual(
        'code' in expected ? [] : Object.keys(expected.object),
      );
    });
  });

  it('a line the scan takes is one JSON.parse reads to that object, member for member (property)', () => {
    const piece = fc.constantFrom(
      '"a"',
      '"b"',
      '"\\u00e9"',
      '"\\ud800"',
      '"\\"\\\\\\/\\n"',
      '"é😀"',
      '"\\x"',
      '"\t"',
      '0',
      '-0',
      '01',
      '1.',
      '.5',
      '1e400',
      '-12.5E+3',
      '12345678901234567890',
      'true',
      'nul',
      'null',
      '{}',
      '[]',
      '[1,]',
      '{"a":[{"b":null}]}',
      ':',
      ',',
      ' ',
      '{',
      '}',
      '[',
      ']',
    );
    const members = new LineMembers();
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), fc.boolean(), (pieces, wrap) => {
        const text = wrap ? `{"k":${pieces.join('')}}` : pieces.join('');
        const bytes = Buffer.from(text, 'utf8');
        if (!scanObjectLine(bytes, 0, bytes.length, members)) return;
        const parsed = JSON.parse(text) as Record<string, unknown>;
        expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)).toBe(true);
        const names: string[] = [];
        for (let m = 0; m < members.count; m++)
          names.push(bytes.toString('utf8', members.keyStart[m], members.keyEnd[m]));
        for (let m = 0; m < members.count; m++) {
          // A repeated name: JSON.parse keeps the last.
          if (names.lastIndexOf(names[m]!) !== m) continue;
          const value = bytes.toString('utf8', members.valueStart[m], members.valueEnd[m]);
          const kind = members.kind[m]!;
          const quoted = kind === COPY_STRING || kind === COPY_ESCAPES || kind === ESCAPED_STRING;
          expect(JSON.parse(quoted ? `"${value}"` : value)).toEqual(parsed[names[m]!]);
        }
        expect([...new Set(names)].sort()).toEqual(Object.keys(parsed).sort());
      }),
      { numRuns: 3000 },
    );
  });

  /** The request lines of a prepared directory (requests-*.jsonl, and reused.requests.jsonl with `reused`), in order. */
  const requestLines = (outDir: string, reused = false) =>
    readdirSync(outDir)
      .filter((f) => /^requests-\d+\.jsonl$/.test(f) || (reused && f === 'reused.requests.jsonl'))
      .sort()
      .flatMap((f) => readFileSync(join(outDir, f), 'utf8').split('\n').slice(0, -1));

  /** Each row's expected prompts by custom_id, from the reference parse: rows it rejects, or that lack a column, have none. */
  function expectedPrompts(copies: number): Map<string, string> {
    const prompts = new Map<string, string>();
    let index = 0;
    for (let c = 0; c < copies; c++)
      for (const line of EDGE_LINES) {
        index++;
        const expected = reference(line);
        if ('code' in expected) continue;
        const values = expected.object;
        if (!Object.hasOwn(values, 'title') || !Object.hasOwn(values, 'review')) continue;
        prompts.set(
          `row-${index}`,
          JSON.stringify({
            system: `about ${textOf(values.id)}`,
            user: `T: ${textOf(values.title)} R: ${textOf(values.review)}`,
          }),
        );
      }
    return prompts;
  }

  /** Checks each line is JSON.stringify's own bytes for its request, with the prompts the reference expects. */
  function expectLines(lines: string[], prompts: Map<string, string>): void {
    expect(lines).toHaveLength(prompts.size);
    for (const line of lines) {
      const request = JSON.parse(line) as {
        custom_id: string;
        body: { messages: Array<{ content: string }> };
      };
      expect(JSON.stringify(request), line).toBe(line);
      const [system, user] = request.body.messages;
      expect(JSON.stringify({ system: system!.content, user: user!.content }), line).toBe(
        prompts.get(request.custom_id),
      );
    }
  }

  const TEMPLATE = 'T: {{title}} R: {{review}}';
  // Enough rows that render threads take over (past 16,384 rows).
  const COPIES = 450;

  it('make request lines that are JSON.stringify of each request, on render threads too, alike in prepare and in the composed stages', async () => {
    const file = edgeFile('many.jsonl', COPIES);
    const outDir = join(dir, 'prepared');
    await prepare(file, {
      outDir,
      model: 'qwen-plus',
      template: TEMPLATE,
      system: 'about {{id}}',
      provider: 'local',
    });
    const requests = requestLines(outDir);
    expectLines(requests, expectedPrompts(COPIES));
    // The row hashes are those of the cells as written (the join's RowHasher reads them so).
    expect(readFileSync(join(outDir, 'row-hashes.tsv'), 'utf8').split('\n').slice(1, -1)).toHaveLength(
      requests.length,
    );
    const composedDir = join(dir, 'composed');
    await pipeline(
      jsonlSource(file),
      toRequests({ model: 'qwen-plus', template: TEMPLATE, system: 'about {{id}}', provider: 'local' }),
      validateRequests({ provider: 'local' }),
      shardRequests({ outDir: composedDir, provider: 'local' }),
    );
    expect(requestLines(composedDir)).toEqual(requests);
  });

  it('make the defined request key of each line written', async () => {
    const file = edgeFile('keys.jsonl', COPIES);
    const outDir = join(dir, 'keyed');
    await prepare(file, {
      outDir,
      model: 'qwen-plus',
      template: TEMPLATE,
      system: 'about {{id}}',
      temperature: 0,
      provider: 'local',
      dedup: 'auto',
    });
    const lines = requestLines(outDir, true);
    expectLines(lines, expectedPrompts(COPIES));
    const written = new Map(
      lines.map((line) => [(JSON.parse(line) as { custom_id: string }).custom_id, line]),
    );
    const records = readFileSync(join(outDir, REQUEST_KEYS_FILE), 'utf8').split('\n').slice(0, -1);
    expect(records).toHaveLength(lines.length);
    for (const record of records) {
      const [idJson, key] = record.split('\t');
      const id = JSON.parse(idJson!) as string;
      expect(key, id).toBe(definedKey(written.get(id)!));
    }
  });
});
