import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpillCursor, SpillFile } from '../../../src/core/join/spill-file.js';
import { spillRange } from '../../../src/core/results/parallel-results.js';
import { jsonCellTexts } from '../../../src/core/results/result-cells.js';
import { fileWith, tempDir } from '../../helpers.js';
import { answerLine } from '../../support/results.js';

const dir = tempDir('bp-parallel-results-');
let runs = 0;

describe('spillRange', () => {
  it('gives every line to exactly one range, wherever the cuts fall (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(fc.string({ unit: fc.constantFrom('a', 'é', '😀', '\n'), maxLength: 6 }), {
            maxLength: 8,
          }),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
        async (files, cuts) => {
          // Each file: answer lines (ids name the file and line), some blank lines, maybe no final newline.
          const paths: string[] = [];
          const sizes: number[] = [];
          const expected: string[] = [];
          files.forEach((contents, f) => {
            const lines = contents.map((c, i) =>
              c === '' ? '' : answerLine({ custom_id: `f${f}-l${i + 1}`, content: c }),
            );
            lines.forEach((l, i) => {
              if (l !== '') expected.push(`f${f}-l${i + 1}`);
            });
            const text = lines.join('\n') + (f % 2 === 0 ? '\n' : '');
            paths.push(fileWith(dir, `f${f}.jsonl`, text));
            sizes.push(Buffer.byteLength(text));
          });
          const total = sizes.reduce((a, b) => a + b, 0);
          const bounds = [0, ...cuts.map((c) => Math.floor(c * total)).sort((a, b) => a - b), total];
          const seen: string[] = [];
          let reported = 0;
          for (let r = 0; r + 1 < bounds.length; r++) {
            const spill = `${dir}/spill-${++runs}`;
            const report = await spillRange({
              files: paths,
              sizes,
              start: bounds[r]!,
              end: bounds[r + 1]!,
              partitions: 1,
              rangeRows: 0,
              spill,
              invalid: undefined,
              labels: undefined,
              schema: undefined,
              badLines: 'report',
              cells: { fields: [], include: ['custom_id'], payload: 'content' },
              encoding: { kind: 'json' },
            });
            reported += report.results;
            const file = SpillFile.written(spill, report.index);
            const cursor = new SpillCursor(file, 0);
            while (await cursor.load()) {
              for (let line = cursor.next(); line !== undefined; line = cursor.next()) {
                const cells = jsonCellTexts(line.slice(line.indexOf('\t') + 3)).map(
                  (c) => JSON.parse(c) as unknown,
                );
                seen.push(String(cells.at(-1)));
              }
            }
            await file.close();
          }
          expect(seen.sort()).toEqual(expected.sort());
          expect(reported).toBe(expected.length);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('numbers lines from the start of the file, whatever range it starts in', async () => {
    const text = `${['a', 'b', 'c', 'd'].map((c) => answerLine({ custom_id: c, content: c })).join('\n')}\n{bad line}\n`;
    const path = fileWith(dir, 'numbered.jsonl', text);
    const size = Buffer.byteLength(text);
    const report = await spillRange({
      files: [path],
      sizes: [size],
      start: Math.floor(size / 2),
      end: size,
      partitions: 1,
      rangeRows: 0,
      spill: `${dir}/spill-numbered`,
      invalid: undefined,
      labels: undefined,
      schema: undefined,
      badLines: 'report',
      cells: { fields: [], include: [], payload: 'content' },
      encoding: { kind: 'json' },
    });
    expect(report.problems.first).toEqual([
      expect.objectContaining({
        code: 'BP_RESULT_PARSE',
        context: expect.objectContaining({ file: path, line: 5 }),
      }),
    ]);
  });
});
