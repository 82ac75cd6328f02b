/**
 * The HTML evaluation report, rendered by a real browser (Debian's Chromium, headless): one heatmap
 * cell per confusion matrix entry with the right count, bars per label, and a screenshot that is not
 * blank. Needs Chromium (`.ci/test-tools` installs it); skipped with a note where it is missing, except
 * in CI.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';
import puppeteer from 'puppeteer-core';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/eval/evaluate.js';
import { evaluationPage } from '../../src/eval/report-html.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));
if (CHROMIUM === undefined) {
  if (process.env.BATCHPIPE_NOTEBOOK_TESTS === 'require')
    throw new Error('chromium not installed: run .ci/test-tools');
  console.warn('skipping the HTML report test: chromium not installed (run .ci/test-tools)');
}

describe('the HTML evaluation report in a browser', () => {
  it.skipIf(CHROMIUM === undefined)(
    'has one heatmap cell per matrix entry, per-label bars, and is not blank',
    async () => {
      const dir = tempDir('bp-report-');
      const labels = ['cat', 'dog', 'bird & <fish>'];
      // gold i answered j: (i + 1) * 10 + j rows, so every cell has a count of its own.
      const rows: string[][] = [];
      labels.forEach((gold, i) => {
        labels.forEach((answer, j) => {
          for (let n = 0; n < (i + 1) * 10 + j; n++) rows.push([`${i}-${j}-${n}`, gold, answer]);
        });
      });
      const report = await evaluate(fileWith(dir, 'pets.csv', csvText(['id', 'gold', 'label'], rows)), {
        gold: 'gold',
        resamples: 100,
      });
      const page = fileWith(dir, 'report.html', evaluationPage(report));

      const browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
      });
      try {
        const tab = await browser.newPage();
        await tab.setViewport({ width: 900, height: 900 });
        await tab.goto(pathToFileURL(page).href, { waitUntil: 'load' });
        const cells = await tab.$$eval('table.confusion td.cell', (tds) =>
          tds.map((td) => ({
            gold: td.getAttribute('data-gold'),
            answer: td.getAttribute('data-answer'),
            count: Number(td.textContent),
            background: td.getAttribute('style'),
          })),
        );
        const sorted = [...labels].sort();
        expect(cells).toHaveLength(labels.length ** 2);
        for (const cell of cells) {
          const i = labels.indexOf(cell.gold!);
          const j = labels.indexOf(cell.answer!);
          expect(cell.count, `${cell.gold} -> ${cell.answer}`).toBe((i + 1) * 10 + j);
        }
        expect(cells.map((c) => c.gold)).toEqual(sorted.flatMap((l) => sorted.map(() => l)));
        // Shaded by count: not every cell the same colour.
        expect(new Set(cells.map((c) => c.background)).size).toBeGreaterThan(3);
        const bars = await tab.$$eval('.label', (divs) =>
          divs.map((div) => ({
            label: div.getAttribute('data-label'),
            widths: [...div.querySelectorAll('.fill')].map((fill) => fill.getBoundingClientRect().width),
          })),
        );
        expect(bars.map((b) => b.label)).toEqual(sorted);
        for (const bar of bars) {
          expect(bar.widths).toHaveLength(3);
          for (const width of bar.widths) expect(width).toBeGreaterThan(0);
        }

        const shot = PNG.sync.read(Buffer.from(await tab.screenshot({ type: 'png' })));
        let dark = 0;
        const colours = new Set<number>();
        for (let p = 0; p < shot.data.length; p += 4) {
          const [r, g, b] = [shot.data[p]!, shot.data[p + 1]!, shot.data[p + 2]!];
          if (r + g + b < 600) dark++;
          colours.add((r << 16) | (g << 8) | b);
        }
        expect(dark / (shot.width * shot.height)).toBeGreaterThan(0.01);
        expect(colours.size).toBeGreaterThan(20);
      } finally {
        await browser.close();
      }
    },
  );
});
