import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { partitionOf, spillResult } from '../../../src/core/join/hash-join.js';
import { SpillCursor, SpillFile } from '../../../src/core/join/spill-file.js';
import { joinKeyOf } from '../../../src/core/requests/custom-id.js';
import {
  type CellEncoding,
  CellLayout,
  type CellSpec,
  cellEncoder,
  cellWriter,
} from '../../../src/core/results/result-cells.js';
import {
  blankRecord,
  RESULT_STATUSES,
  type ResultRecord,
  type ResultStatus,
  STATUS_RANK,
} from '../../../src/core/results/result-parser.js';
import { tempDir } from '../../helpers.js';

const dir = tempDir('bp-spill-result-');
const PARTITIONS = 5;

function record(custom_id: string, status: ResultStatus, fields: Partial<ResultRecord> = {}): ResultRecord {
  return { ...blankRecord(custom_id, 'f.jsonl', 1), status, ...fields };
}

const records: ResultRecord[] = [
  record('row-1', 'ok', { content: 'positive', prompt_tokens: 157, completion_tokens: 1 }),
  record('row-2', 'failed', { error_code: 'invalid_value', error_message: 'Invalid value, "messages"' }),
  record('row-3', 'truncated', { content: 'a\nb', model: 'gpt-4o-mini', request_id: 'req_3' }),
  record('row-4', 'ok', { content: 'ünïcode 很好 😀', prompt_tokens: 2 ** 31, completion_tokens: -1 }),
  record('row-5', 'invalid_output', { content: '{"a":1}', parsed: { a: 1 }, reasoning_tokens: 1.5 }),
  record('row-6', 'expired', { embedding: [0.5, -1.25], cached: true }),
  record('id "quoted" \\ back', 'ok', { content: 'x' }),
  record('control \u0001 and del \u007f', 'ok', { content: 'y' }),
  record('ро-1 😀', 'ok', { content: 'z' }),
  record(`long-${'x'.repeat(300)}`, 'ok', { content: 'derived key' }),
  record(`long-${'é'.repeat(200)}`, 'cancelled', { content: null }),
  record('row-1', 'ok', { content: 'the later one' }),
];

const specs: CellSpec[] = [
  { fields: [], include: [], payload: 'content' },
  {
    fields: [],
    include: ['custom_id', 'model', 'request_id', 'cached', 'reasoning_tokens', 'status_code'],
    payload: 'embedding',
  },
  { fields: [['a'], ['b']], include: ['content'], payload: 'content' },
];
const encodings: CellEncoding[] = [
  { kind: 'json' },
  { kind: 'csv', delimiter: ',' },
  { kind: 'csv', delimiter: '|' },
];

describe('spillResult', () => {
  it('writes each result to its partition as `"id"\\t<rank><status><cells>`, from bytes or from text alike', async () => {
    let n = 0;
    for (const spec of specs) {
      for (const encoding of encodings) {
        const layout = new CellLayout(spec);
        const encode = cellEncoder(encoding);
        const file = new SpillFile(join(dir, `spill-${n++}`), PARTITIONS);
        for (const r of records) {
          const waiting = spillResult(file, r, layout, encode, cellWriter(encoding));
          if (waiting) await waiting;
        }
        await file.flush();
        // The plain reference: each line made as text, in the partition of partitionOf.
        const expected: string[][] = Array.from({ length: PARTITIONS }, () => []);
        for (const r of records) {
          const key = joinKeyOf(r.custom_id);
          const status = `${STATUS_RANK[r.status]}${RESULT_STATUSES.indexOf(r.status)}`;
          expected[partitionOf(key, PARTITIONS)]!.push(
            `${JSON.stringify(key)}\t${status}${encode(layout.fromRecord(r))}`,
          );
        }
        for (let p = 0; p < PARTITIONS; p++) {
          const cursor = new SpillCursor(file, p);
          const lines: string[] = [];
          while (await cursor.load())
            for (let line = cursor.next(); line !== undefined; line = cursor.next()) lines.push(line);
          expect(lines).toEqual(expected[p]);
        }
        await file.close();
      }
    }
  });
});
