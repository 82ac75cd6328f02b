import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { missingTools, projectDir, ROOT } from './tools.js';

const EXAMPLES = join(ROOT, 'examples');
const notebooks = readdirSync(EXAMPLES).filter((name) => name.endsWith('.ipynb'));
const skip = missingTools() !== undefined;

interface Output {
  output_type: string;
  name?: string;
  text?: string[];
  data?: Record<string, string[]>;
  ename?: string;
}
interface Cell {
  cell_type: string;
  source: string[];
  outputs?: Output[];
}

describe('the example notebooks, run headless on the tslab kernel', () => {
  it('has the notebooks the docs name', () => {
    expect(notebooks).toEqual(expect.arrayContaining(['evaluation.ipynb', 'labeling.ipynb']));
  });

  it.skipIf(skip).each(notebooks)('%s runs every cell without an error, and shows every table', (name) => {
    // A user's project: batchpipe installed in node_modules, the notebook beside its data.
    const dir = projectDir('commonjs');
    for (const file of readdirSync(EXAMPLES).filter((f) => !f.endsWith('.ts')))
      copyFileSync(join(EXAMPLES, file), join(dir, file));
    execFileSync(
      'jupyter-nbconvert',
      [
        '--to',
        'notebook',
        '--execute',
        '--allow-errors',
        '--ExecutePreprocessor.timeout=300',
        '--output',
        'executed.ipynb',
        name,
      ],
      {
        cwd: dir,
        stdio: 'pipe',
        env: { ...process.env, DASHSCOPE_API_KEY: '', OPENAI_API_KEY: '', BATCHPIPE_API_KEY: '' },
      },
    );
    const cells = (
      JSON.parse(readFileSync(join(dir, 'executed.ipynb'), 'utf8')) as { cells: Cell[] }
    ).cells.filter((cell) => cell.cell_type === 'code');
    expect(cells.length).toBeGreaterThan(1);
    for (const cell of cells) {
      const source = cell.source.join('');
      const outputs = cell.outputs ?? [];
      // tslab reports compile errors on stderr and runtime errors as error outputs.
      const errors = outputs.filter((o) => o.output_type === 'error' || o.name === 'stderr');
      expect(
        errors.map((o) => o.ename ?? o.text?.join('')),
        source,
      ).toEqual([]);
      const shows = source.match(/\bshow\(/g)?.length ?? 0;
      const tables = outputs.filter(
        (o) => o.output_type === 'display_data' && o.data?.['text/html']?.join('').includes('<table'),
      );
      expect(tables.length, `tables shown by:\n${source}`).toBe(shows);
    }
  });
});
