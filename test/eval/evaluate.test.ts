/**
 * `evaluate` and `batchpipe eval`: the scores against values computed by hand, the bootstrap's
 * reproducibility, agreement between two answers, and a whole labeling run scored at the end.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../src/eval/evaluate.js';
import { runTable } from '../../src/jobs/run-table.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { runCli } from '../cli/run-cli.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-eval-');

// Scored rows (gold -> label): pos->pos, pos->neg, neg->neg, neg->neg, neu->pos, neu->neu.
// Row 6 failed, row 7 has no gold: neither is scored.
const TABLE = csvText(
  ['id', 'gold', 'label', 'status', 'other'],
  [
    ['1', 'pos', 'pos', 'ok', 'pos'],
    ['2', 'pos', 'neg', 'ok', 'pos'],
    ['3', 'neg', 'neg', 'ok', 'neg'],
    ['4', 'neg', 'neg', 'ok', 'pos'],
    ['5', 'neu', 'pos', 'ok', 'neu'],
    ['6', 'pos', '', 'failed', 'pos'],
    ['7', '', 'neg', 'ok', 'neg'],
    ['8', 'neu', 'neu', 'ok', 'neu'],
  ],
);

describe('evaluate', () => {
  it('scores against values computed by hand', async () => {
    const report = await evaluate(fileWith(dir, 'small.csv', TABLE), { gold: 'gold', resamples: 0 });
    expect(report).toMatchObject({
      answer: 'label',
      rows: 8,
      scored: 6,
      unscored: { failed: 1, no_gold: 1 },
    });
    expect(report.labels).toEqual(['neg', 'neu', 'pos']);
    expect(report.matrix).toEqual([
      [2, 0, 0],
      [0, 1, 1],
      [1, 0, 1],
    ]);
    const s = report.scores;
    expect(s.accuracy).toBeCloseTo(4 / 6, 12);
    // neg: P 2/3 R 1 F1 0.8; neu: P 1 R 1/2 F1 2/3; pos: P 1/2 R 1/2 F1 1/2.
    expect(s.perLabel.map((l) => [l.label, l.precision, l.recall, l.f1, l.support, l.predicted])).toEqual([
      ['neg', 2 / 3, 1, expect.closeTo(0.8, 12), 2, 3],
      ['neu', 1, 0.5, expect.closeTo(2 / 3, 12), 2, 1],
      ['pos', 0.5, 0.5, 0.5, 2, 2],
    ]);
    expect(s.macroF1).toBeCloseTo((0.8 + 2 / 3 + 0.5) / 3, 12);
    expect(s.weightedF1).toBeCloseTo((2 * 0.8 + 2 * (2 / 3) + 2 * 0.5) / 6, 12);
    // Chance agreement (2*3 + 2*1 + 2*2) / 36 = 1/3; kappa (2/3 - 1/3) / (2/3) = 0.5.
    expect(s.kappa).toBeCloseTo(0.5, 12);
    expect(report.intervals).toBeUndefined();
  });

  it('gives seeded 95% bootstrap intervals around the estimate, the same for the same seed', async () => {
    // 2,000 rows, 80% right, two labels.
    const rows = Array.from({ length: 2000 }, (_, i) => {
      const gold = i % 2 === 0 ? 'a' : 'b';
      return [String(i), gold, i % 5 === 0 ? (gold === 'a' ? 'b' : 'a') : gold];
    });
    const file = fileWith(dir, 'big.csv', csvText(['id', 'gold', 'label'], rows));
    const one = await evaluate(file, { gold: 'gold', seed: 7 });
    const again = await evaluate(file, { gold: 'gold', seed: 7 });
    const other = await evaluate(file, { gold: 'gold', seed: 8 });
    expect(one.scores.accuracy).toBeCloseTo(0.8, 12);
    expect(one.intervals).toEqual(again.intervals);
    expect(other.intervals!.accuracy).not.toEqual(one.intervals!.accuracy);
    const { low, high } = one.intervals!.accuracy;
    expect(low).toBeLessThan(0.8);
    expect(high).toBeGreaterThan(0.8);
    // The normal approximation's half-width: 1.96 * sqrt(0.8 * 0.2 / 2000) = 0.0175.
    expect(high - low).toBeGreaterThan(0.025);
    expect(high - low).toBeLessThan(0.045);
    expect(one.intervals).toMatchObject({ resamples: 1000, seed: 7 });
  });

  it('measures agreement with another column, and with another joined table of the same rows', async () => {
    const file = fileWith(dir, 'agree.csv', TABLE);
    const columns = await evaluate(file, { gold: 'gold', compare: 'other', resamples: 0 });
    // Both answers present and ok: rows 1-5, 7, 8; equal on 1, 3, 7, 8.
    expect(columns.agreement).toMatchObject({ with: 'other', n: 7, agreement: 4 / 7 });
    const otherRun = fileWith(
      dir,
      'other-run.csv',
      csvText(
        ['id', 'gold', 'label', 'status'],
        TABLE.trim()
          .split('\n')
          .slice(1)
          .map((line) => {
            const [id, gold, , status, other] = line.split(',');
            return [id!, gold!, other!, status!];
          }),
      ),
    );
    const tables = await evaluate(file, { gold: 'gold', compareTable: otherRun, resamples: 0 });
    expect(tables.agreement).toMatchObject({ with: `${otherRun}:label`, n: 7, agreement: 4 / 7 });
    expect(tables.agreement!.kappa).toBeCloseTo(columns.agreement!.kappa!, 12);

    const shorter = fileWith(dir, 'shorter.csv', csvText(['id', 'label'], [['1', 'pos']]));
    await expect(evaluate(file, { gold: 'gold', compareTable: shorter })).rejects.toMatchObject({
      code: 'BP_INVALID_OPTION',
      message: expect.stringContaining('fewer rows'),
    });
  });

  it('names a missing column and the columns there are', async () => {
    await expect(evaluate(fileWith(dir, 'cols.csv', TABLE), { gold: 'sentiment' })).rejects.toMatchObject({
      code: 'BP_INVALID_OPTION',
      message: expect.stringMatching(/no column "sentiment".*id, gold, label, status, other/),
    });
  });
});

describe('a labeling run, scored', () => {
  let service: LocalService;
  beforeAll(async () => {
    service = await startLocalService({ timeScale: 36_000 });
  });
  afterAll(() => service.close());

  it('scores the joined table of a run: every ok row scored, the others counted by status', async () => {
    const labels = ['positive', 'negative', 'neutral'];
    const rows = Array.from({ length: 120 }, (_, i) => [`r${i}`, `review number ${i}`, labels[i % 3]!]);
    rows.push(['r-empty', '', 'neutral']); // an empty review is still a request; keep the table honest
    const input = fileWith(dir, 'gold.csv', csvText(['id', 'review', 'sentiment'], rows));
    const out = join(dir, 'labeled.csv');
    const result = await runTable(input, resolveConnection({ provider: 'local', baseURL: service.url }), {
      model: 'qwen-plus',
      template: 'Classify: {{review}}',
      labels,
      idColumn: 'id',
      enableThinking: false,
      runsDir: join(dir, 'runs'),
      pollInterval: 0.05,
      out,
    });
    const report = await evaluate(out, { gold: 'sentiment', resamples: 200 });
    const statuses = result.joined!.statuses;
    expect(report.rows).toBe(rows.length);
    expect(report.answer).toBe('label');
    expect(report.scored).toBe(statuses.ok);
    expect(report.scored + Object.values(report.unscored).reduce((a, b) => a + b, 0)).toBe(rows.length);
    expect(report.matrix.flat().reduce((a, b) => a + b, 0)).toBe(report.scored);
    expect(report.labels.every((l) => labels.includes(l))).toBe(true);
  });
});

describe('batchpipe eval', () => {
  it('prints the report, writes the page, and gives the same numbers as JSON', async () => {
    const file = fileWith(dir, 'cli.csv', TABLE);
    const html = join(dir, 'report.html');
    const text = await runCli(['eval', file, '--gold', 'gold', '--compare', 'other', '--html', html]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('accuracy     0.6667  95% CI [');
    expect(text.stdout).toContain('kappa        0.5000');
    expect(text.stdout).toContain('not scored: 1 failed, 1 no_gold');
    expect(text.stdout).toContain('agreement of label with other: 0.5714 over 7 rows');
    expect(readFileSync(html, 'utf8')).toMatch(/^<!doctype html>[\s\S]*<table class="confusion">/);

    const json = await runCli(['eval', file, '--gold', 'gold', '--json', '--seed', '3']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({
      scored: 6,
      matrix: [
        [2, 0, 0],
        [0, 1, 1],
        [1, 0, 1],
      ],
      intervals: { seed: 3 },
    });
    expect(report.scores.kappa).toBeCloseTo(0.5, 12);
  });

  it('is a usage error (exit 2) to name a column the table lacks', async () => {
    const file = fileWith(dir, 'cli2.csv', TABLE);
    const result = await runCli(['eval', file, '--gold', 'nope']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `error BP_INVALID_OPTION: ${file}:1: evaluate: the table has no column "nope" (it has: id, gold, label, status, other)\n`,
    );
  });
});
