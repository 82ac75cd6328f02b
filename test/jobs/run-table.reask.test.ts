/**
 * `runTable` with `maxReasks`: rows whose answer failed validation are asked again, round after
 * round, each round a run of its own inside the main run's directory; every row still comes out once,
 * and the same call after the fact submits nothing again. Against the local service, whose test engine
 * spoils a share of JSON answers (a re-ask, which holds the invalid answer, is a new draw).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTable } from '../../src/jobs/run-table.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { readManifest } from '../../src/run/manifest.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-reask-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ timeScale: 36_000, invalidJsonRate: 0.4, seed: 5 });
});
afterAll(() => service.close());

const ROWS = 60;
const labels = ['positive', 'negative', 'neutral'];

/** A table of its own: another name, other reviews, so another run. */
function table(name: string): string {
  const rows = Array.from({ length: ROWS }, (_, i) => [`k${i}`, `${name} review ${i}: "fine", mostly`]);
  return fileWith(dir, name, csvText(['id', 'review'], rows));
}

function run(input: string, out: string, maxReasks: number) {
  return runTable(input, resolveConnection({ provider: 'local', baseURL: service.url }), {
    model: 'qwen-plus',
    template: 'Classify: {{review}}',
    labels,
    idColumn: 'id',
    enableThinking: false,
    runsDir: join(dir, 'runs'),
    pollInterval: 0.05,
    out,
    maxReasks,
  });
}

function readOut(path: string): Array<Record<string, string>> {
  return parse(readFileSync(path, 'utf8'), { columns: true }) as Array<Record<string, string>>;
}

describe('runTable re-asking invalid answers', () => {
  it('asks again the rows whose answer was invalid, until they are valid or the rounds run out, every row once', async () => {
    const input = table('reviews.csv');
    const without = await run(input, join(dir, 'plain.csv'), 0);
    const invalid = without.joined!.statuses.invalid_output;
    expect(invalid).toBeGreaterThan(5);
    expect(without.reasks).toEqual([]);

    const out = join(dir, 'reasked.csv');
    const result = await run(input, out, 3);
    expect(result.state).toBe('done');
    const rounds = result.reasks!;
    expect(rounds.length).toBeGreaterThan(0);
    expect(rounds[0]).toMatchObject({ round: 1, requests: invalid, state: 'done' });
    // Each round asks only what is still invalid.
    for (let r = 1; r < rounds.length; r++) expect(rounds[r]!.requests).toBeLessThan(rounds[r - 1]!.requests);
    const stillInvalid = result.joined!.statuses.invalid_output;
    expect(stillInvalid).toBeLessThan(invalid);

    const rows = readOut(out);
    expect(rows.map((r) => r.id)).toEqual(Array.from({ length: ROWS }, (_, i) => `k${i}`));
    for (const row of rows) {
      if (row.status === 'ok') expect(labels).toContain(row.label);
      else expect(row.status).toBe('invalid_output');
    }
    expect(rows.filter((r) => r.status === 'invalid_output')).toHaveLength(stillInvalid);
    // The rows valid the first time keep their first answer.
    const first = readOut(join(dir, 'plain.csv'));
    for (let i = 0; i < ROWS; i++) if (first[i]!.status === 'ok') expect(rows[i]).toEqual(first[i]);

    // Each round is a run of its own, in the main run's directory, sending only the invalid ones, and
    // goes on from the conversation the round before sent: one more invalid answer and correction.
    expect(rounds.length).toBeGreaterThan(1);
    for (const round of rounds) {
      const manifest = await readManifest(round.dir);
      expect(manifest.jobs.reduce((n, j) => n + j.lines, 0)).toBe(round.requests);
      const sent = readFileSync(join(round.dir, manifest.jobs[0]!.input), 'utf8').trimEnd().split('\n');
      for (const line of sent) {
        const { messages } = JSON.parse(line).body as { messages: Array<{ role: string }> };
        expect(messages.filter((m) => m.role === 'assistant')).toHaveLength(round.round);
        expect(messages.at(-1)!.role).toBe('user');
      }
    }
  });

  it('resumes instead of asking again: the same call after the fact creates no batch', async () => {
    const input = table('again.csv');
    const out = join(dir, 'again-out.csv');
    const first = await run(input, out, 2);
    const creates = (await service.records()).calls.filter((c) => c.op === 'batch.create').length;
    const second = await run(input, out, 2);
    expect((await service.records()).calls.filter((c) => c.op === 'batch.create').length).toBe(creates);
    expect(second.reasks).toEqual(first.reasks);
    expect(second.joined!.statuses).toEqual(first.joined!.statuses);
  });

  it('refuses a number of rounds outside 0-5', async () => {
    await expect(run(table('bad.csv'), join(dir, 'bad-out.csv'), 9)).rejects.toMatchObject({
      code: 'BP_INVALID_OPTION',
    });
  });
});
