/**
 * `batchpipe run --mode sync` killed with SIGKILL again and again while its calls are in flight, and
 * run again each time, against a Batch Chat emulation that also refuses calls now and then (429 and
 * 503, sent again). At the end every row must be in the table once, answered, and the service's count
 * of billed answers (per request body) must show that no row was paid for twice, except a row whose
 * answer had come back in the very moment of a kill, before it could be written: the test finds those
 * after each kill (billed at the service, absent from the journal once the process is dead) and
 * allows exactly those. Kills are aimed by watching the journal grow, never by the clock.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { random } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';
import { startCli } from '../support/crash-harness.js';

const SEED = Number(process.env.BP_CRASH_SEED ?? 20261205);
const ROWS = 400;
const KILLS = Number(process.env.BP_SYNC_KILLS ?? 6);

const root = tempDir('bp-sync-crash-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({
    dataDir: join(root, 'service'),
    seed: SEED,
    latencyMs: 25,
    concurrency: 16,
    failRate: 0.05,
    failCodes: ['rate_limit_exceeded', 'service_unavailable'],
    batchChat: { enabled: true },
  });
});
afterAll(() => service.close());

/** Lines in the run's answer journals now (a torn last line counts: it is cut off on resume). */
function journalled(runDir: string | undefined): Map<string, number> {
  const ids = new Map<string, number>();
  if (!runDir || !existsSync(join(runDir, 'answers'))) return ids;
  for (const name of readdirSync(join(runDir, 'answers')))
    for (const line of readFileSync(join(runDir, 'answers', name), 'utf8').split('\n')) {
      const id = /"custom_id":"([^"]+)"/.exec(line)?.[1];
      if (id) ids.set(id, (ids.get(id) ?? 0) + 1);
    }
  return ids;
}

function runDirIn(runs: string): string | undefined {
  const name = existsSync(runs) ? readdirSync(runs).find((n) => n.startsWith('sync-')) : undefined;
  return name && join(runs, name);
}

/** custom_id of each request body's SHA-256, as the service counts billed answers. */
function idsByBody(runDir: string): Map<string, string> {
  const ids = new Map<string, string>();
  for (const name of readdirSync(runDir).filter((n) => /^requests-\d+\.jsonl$/.test(n)))
    for (const line of readFileSync(join(runDir, name), 'utf8').split('\n').filter(Boolean)) {
      const { custom_id, body } = JSON.parse(line) as { custom_id: string; body: unknown };
      ids.set(createHash('sha256').update(JSON.stringify(body)).digest('hex'), custom_id);
    }
  return ids;
}

async function quiet(): Promise<void> {
  // Whatever the dead process had sent ends at the service (answered to no one, or dropped): no call
  // in flight, and no new one for a while (a request read from a dead connection's buffer).
  let calls = -1;
  for (;;) {
    const tally = service.syncTally();
    if (tally.inFlight === 0 && tally.calls === calls) return;
    calls = tally.inFlight === 0 ? tally.calls : -1;
    await sleep(100);
  }
}

describe('sync mode killed with SIGKILL', () => {
  it('resumes without paying again for a row already answered, and writes every row once', async () => {
    const next = random(SEED);
    let text = 'id,text\n';
    for (let i = 1; i <= ROWS; i++) text += `${i},review ${i} ${Math.floor(next() * 1e9)}\n`;
    const input = fileWith(root, 'in.csv', text);
    const runs = join(root, 'runs');
    const out = join(root, 'out.csv');
    const args = [
      'run',
      input,
      '--template',
      'Say: {{text}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--out',
      out,
      '--mode',
      'sync',
      '--provider',
      'dashscope-batch-chat',
      '--base-url',
      service.url,
      '--api-key',
      'local-key',
      '--runs-dir',
      runs,
      '--max-attempts',
      '10',
      '--call-timeout',
      '60',
    ];
    /** Request bodies billed before a kill and not in the journal after it: the rows a kill may cost twice. */
    const lostAtKill = new Map<string, number>();
    /** Billed answers of each row journalled at a kill, as counted then: never to grow after. */
    const paidWhenJournalled = new Map<string, number>();
    const log: string[] = [];
    let kills = 0;
    for (let spawn = 0; spawn < KILLS + 5 && kills < KILLS; spawn++) {
      const before = journalled(runDirIn(runs)).size;
      const aim = before + 20 + Math.floor(next() * 40);
      const cli = startCli(args, root);
      while (!cli.exited && journalled(runDirIn(runs)).size < aim) await sleep(5);
      if (cli.exited) break;
      const billedAtKill = Object.keys(service.syncTally().answered).length;
      cli.child.kill('SIGKILL');
      await cli.closed;
      await quiet();
      const billedAfter = Object.keys(service.syncTally().answered).length;
      const runDir = runDirIn(runs)!;
      const written = journalled(runDir);
      const byBody = idsByBody(runDir);
      let lost = 0;
      for (const [body, n] of Object.entries(service.syncTally().answered)) {
        if (written.has(byBody.get(body)!)) paidWhenJournalled.set(body, n);
        else {
          lostAtKill.set(body, (lostAtKill.get(body) ?? 0) + 1);
          lost++;
        }
      }
      kills++;
      log.push(
        `kill ${kills}: ${written.size} rows journalled, ${lost} billed answers not yet written, ${billedAfter - billedAtKill} billed after the kill`,
      );
    }
    if (process.env.BP_CRASH_LOG) console.log(log.join('\n'));
    expect(kills, log.join('\n')).toBe(KILLS);
    const last = startCli(args, root);
    const { code } = await last.closed;
    expect(code, last.lines.join('\n')).toBe(0);

    const rows = readFileSync(out, 'utf8').trimEnd().split('\n').slice(1);
    expect(rows.map((r) => r.split(',')[0])).toEqual(Array.from({ length: ROWS }, (_, i) => String(i + 1)));
    expect(rows.every((r) => r.split(',')[2] === 'ok')).toBe(true);
    const runDir = runDirIn(runs)!;
    // Each row has exactly one line in the journal: none was answered twice by this client's account.
    expect([...journalled(runDir).values()].every((n) => n === 1)).toBe(true);
    const answered = service.syncTally().answered;
    const byBody = idsByBody(runDir);
    expect(Object.keys(answered).sort()).toEqual([...byBody.keys()].sort());
    const twice = Object.entries(answered).filter(([, n]) => n > 1);
    if (process.env.BP_CRASH_LOG)
      console.log(`${twice.length} rows billed twice, ${lostAtKill.size} answered at a kill`);
    // A row whose answer was in the journal when a process died was never sent (paid) again.
    for (const [body, n] of paidWhenJournalled) expect(answered[body], byBody.get(body)).toBe(n);
    // A row paid more than once had its answer come back in the very moment of a kill (in flight at
    // the service, or not yet written): once more per such kill at most.
    for (const [body, n] of twice)
      expect(n, `${byBody.get(body)} billed ${n} times\n${log.join('\n')}`).toBeLessThanOrEqual(
        1 + (lostAtKill.get(body) ?? 0),
      );
  }, 240_000);
});
