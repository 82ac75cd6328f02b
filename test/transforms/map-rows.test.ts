import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { csvSource, mapRows, toRequests } from '../../src/index.js';
import { takeBatches } from '../../src/streams/batch-protocol.js';
import { MAPPED_BATCH_ROWS } from '../../src/transforms/map-rows.js';
import type { RequestItem, Row } from '../../src/types.js';
import { collect, fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-map-rows-');
const TEXTS = [
  'plain',
  'déjà vu 😀',
  'the "premium" model',
  'line\nbreak',
  '日本語のレビュー',
  'tab\there',
  '',
];

/** A generated table: `count` rows of id, title, review with quotes, newlines and multi-byte text. */
function table(count: number): string {
  const rows = [['id', 'title', 'review']];
  for (let i = 1; i <= count; i++)
    rows.push([String(i), TEXTS[i % TEXTS.length]!, `${TEXTS[(i * 3) % TEXTS.length]} #${i}`]);
  return fileWith(dir, 'table.csv', stringify(rows));
}

/** Batches a batchpipe stage hands to the next one (each batch's row numbers). */
class BatchRecorder extends Writable {
  readonly batches: number[][] = [];

  constructor() {
    super({ objectMode: true, highWaterMark: 1 });
    // Asks the stage before it for batches, as batchpipe's own stages do.
    takeBatches(this);
  }

  override _write(
    batch: { length: number; index(i: number): number; release(): void },
    _encoding: BufferEncoding,
    done: () => void,
  ): void {
    this.batches.push(Array.from({ length: batch.length }, (_, i) => batch.index(i)));
    batch.release();
    done();
  }
}

const mapper = (values: Record<string, unknown>): Record<string, unknown> => ({
  ...values,
  review_chars: String(values.review).length,
});

describe('mapRows', () => {
  it('makes the requests a plain reference makes (csv-parse, the mapper, JSON.stringify) from a generated table', async () => {
    const count = 5 * MAPPED_BATCH_ROWS + 17;
    const input = table(count);
    const items = await collect<RequestItem>(
      csvSource(input)
        .pipe(mapRows(mapper))
        .pipe(
          toRequests({
            model: 'qwen-plus',
            template: 'Title: {{title}}\nReview: {{review}} ({{review_chars}})',
          }),
        ),
    );
    const reference = (parse(readFileSync(input, 'utf8'), { columns: true }) as Record<string, string>[]).map(
      (values, i) => {
        const mapped = mapper(values);
        return JSON.stringify({
          custom_id: `row-${i + 1}`,
          method: 'POST',
          url: '/v1/chat/completions',
          body: {
            model: 'qwen-plus',
            messages: [
              {
                role: 'user',
                content: `Title: ${mapped.title}\nReview: ${mapped.review} (${mapped.review_chars})`,
              },
            ],
          },
        });
      },
    );
    expect(items.map((item) => JSON.stringify(item.request))).toEqual(reference);
  });

  it(`hands rows on in batches of at most ${MAPPED_BATCH_ROWS}, every row once and in order, from a sync or an async mapper`, async () => {
    const count = 2048 + 300;
    const input = table(count);
    for (const map of [mapper, async (values: Record<string, unknown>) => mapper(values)]) {
      const recorder = new BatchRecorder();
      await pipeline(csvSource(input), mapRows(map), recorder);
      expect(recorder.batches.every((b) => b.length > 0 && b.length <= MAPPED_BATCH_ROWS)).toBe(true);
      expect(recorder.batches.flat()).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    }
  });

  it('keeps each row once when a later row makes the mapper throw, as a rejection in its place', async () => {
    const count = MAPPED_BATCH_ROWS * 2 + 5;
    const input = table(count);
    const items = await collect<Row | { kind: 'rejection'; index: number; code: string }>(
      csvSource(input).pipe(
        mapRows((values) => {
          if (values.id === String(MAPPED_BATCH_ROWS + 1)) throw new Error('odd row');
          return values;
        }),
      ),
    );
    expect(items.map((item) => item.index)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    const rejected = items.filter((item) => item.kind === 'rejection');
    expect(rejected.map((item) => [item.index, (item as { code: string }).code])).toEqual([
      [MAPPED_BATCH_ROWS + 1, 'BP_MAPPER_FAILED'],
    ]);
  });
});
