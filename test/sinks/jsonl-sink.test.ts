import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonlSink } from '../../src/sinks/jsonl-sink.js';
import { row, tempDir } from '../helpers.js';

const dir = tempDir('bp-jsonl-sink-');
let files = 0;

describe('jsonlSink', () => {
  it('writes one JSON object per row, values as they are (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.dictionary(fc.string(), fc.jsonValue()), { maxLength: 20 }),
        async (records) => {
          const to = join(dir, `out-${++files}.jsonl`);
          const sink = jsonlSink(to);
          await pipeline(Readable.from(records.map((values, i) => row(i + 1, values))), sink);
          const text = readFileSync(to, 'utf8');
          const back =
            text === ''
              ? []
              : text
                  .trimEnd()
                  .split('\n')
                  .map((l) => JSON.parse(l));
          expect(back).toEqual(records.map((r) => JSON.parse(JSON.stringify(r))));
          expect(sink.summary!.rows).toBe(records.length);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('keeps numbers numbers and vectors arrays', async () => {
    const to = join(dir, 'typed.jsonl');
    await pipeline(
      Readable.from([{ id: 'a', embedding: [0.5, -1], prompt_tokens: 3, status: 'ok' }]),
      jsonlSink(to),
    );
    expect(readFileSync(to, 'utf8')).toBe(
      '{"id":"a","embedding":[0.5,-1],"prompt_tokens":3,"status":"ok"}\n',
    );
  });
});
