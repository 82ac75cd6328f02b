/**
 * Issue 6, item 3 (docs/runs.md, "Exactly once"): `batchpipe submit` killed with SIGKILL again and
 * again, at moments chosen by what it is doing (an upload in flight, an intent just written, a create
 * in flight, polling, a download in flight), and resumed each time (`submit` again or `resume`), against
 * a local service that also loses replies after committing (`lose`), fails some requests with
 * retryable codes (so later attempts exist) and takes its time. At the end the service's own records
 * must show every job's file uploaded once and every job's batch created once, and every input row
 * must come back exactly once.
 *
 * Kills are aimed by watching the service (which calls are in flight: test/support/crash-harness.ts)
 * and the run's manifest, never by wall-clock time, so a slow machine only makes the test slower.
 * Every choice (which phase, which call, how long after it) comes from the seed and the spawn's
 * number; BP_CRASH_SEED takes a comma-separated list (two seeds by default, each against its own
 * service and run directory). A failure names the seed and every kill so far.
 * BP_CRASH_KILLS_PER_PHASE=6 makes a longer soak; BP_CRASH_LOG=1 prints every kill with the output
 * of the process it killed.
 */
import { type FSWatcher, mkdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepare } from '../../src/jobs/prepare.js';
import {
  type FaultRule,
  type LocalService,
  type ServiceRecords,
  startLocalService,
} from '../../src/local/index.js';
import { type RunManifest, readManifestSync } from '../../src/run/manifest.js';
import { random } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';
import {
  CallTap,
  type CliProcess,
  describeCalls,
  intentsOf,
  manifestNow,
  type Route,
  type RouteCounts,
  startCli,
} from '../support/crash-harness.js';
import { runCli } from './run-cli.js';

/** Each seed runs against its own service and run directory; two seeds aim kills differently. */
const SEEDS = (process.env.BP_CRASH_SEED ?? '20261124,7').split(',').map(Number);
const ROWS = 600;
const PER_SHARD = 25;
/** How long uploads, creates and downloads take at the service (before or after committing). */
const SLOW_MS = 40;
const PHASES = ['upload', 'intent', 'create', 'poll', 'download'] as const;
type Phase = (typeof PHASES)[number];
/** Phases that exist only while jobs are being submitted. */
const SUBMITTING: ReadonlySet<Phase> = new Set(['upload', 'intent', 'create']);
const SUBMIT_STATES: ReadonlySet<string> = new Set(['pending', 'uploading', 'uploaded', 'creating']);
/** Kills to land in each phase (at least one each is asserted; more with BP_CRASH_KILLS_PER_PHASE). */
const KILLS_PER_PHASE = Number(process.env.BP_CRASH_KILLS_PER_PHASE ?? 3);
const MAX_SPAWNS = 80;

/** The call a phase aims at. */
const TARGET: Record<Exclude<Phase, 'intent'>, Route> = {
  upload: 'files.create',
  create: 'batches.create',
  poll: 'batches.retrieve',
  download: 'files.content',
};

/**
 * In arming order; the first rule that fires decides. Replies lost after the commit, retryable query
 * errors, then latency for every call (half of the uploads and creates wait before committing, half
 * after: a kill in either window leaves an intent whose effect exists or not). Each route ends with a
 * rule that always fires, so CallTap can count what is in flight.
 */
const FAULTS: FaultRule[] = [
  { route: 'files.create', kind: 'lose', rate: 0.1 },
  { route: 'batches.create', kind: 'lose', rate: 0.1 },
  { route: 'files.content', kind: 'lose', rate: 0.05 },
  { route: 'batches.retrieve', kind: 'error', status: 503, rate: 0.02 },
  { route: 'files.create', kind: 'slow', delayMs: SLOW_MS, rate: 0.5 },
  { route: 'files.create', kind: 'stall', delayMs: SLOW_MS },
  { route: 'batches.create', kind: 'slow', delayMs: SLOW_MS, rate: 0.5 },
  { route: 'batches.create', kind: 'stall', delayMs: SLOW_MS },
  { route: 'files.content', kind: 'slow', delayMs: SLOW_MS / 2 },
  { route: 'batches.retrieve', kind: 'slow', delayMs: 5 },
  { route: 'files.list', kind: 'slow', delayMs: 5 },
  { route: 'batches.list', kind: 'slow', delayMs: 5 },
  { route: '*', kind: 'slow', delayMs: 0 },
];

interface Plan {
  phase: Phase;
  /** Calls of the phase (or new intents) to let through before aiming. */
  skip: number;
  /** ms from the aimed-at call's arrival to the kill. */
  delayMs: number;
}

interface Shot {
  phase: Phase;
  plan: Plan;
  /** ms from spawn to kill. */
  atMs: number;
  /** ms from the test's start to the kill. */
  clockMs: number;
  inFlight: RouteCounts;
  /** Calls this process made. */
  made: RouteCounts;
  /** The intent the kill followed (phase `intent`). */
  intent?: string;
}

interface Kill extends Shot {
  spawn: number;
  /** The killed process's last lines. */
  output: string[];
  command: string;
  hit: boolean;
  /** Intents the kill left in the manifest, and whether the service had committed each. */
  intents: Array<{ intent: string; committed: boolean }>;
}

describe.each(SEEDS)(
  'a submit killed with SIGKILL in every phase and resumed each time (seed %i)',
  (SEED) => {
    const root = tempDir('bp-crash-');
    const tap = new CallTap();
    let service: LocalService;

    beforeAll(async () => {
      // The service lives in the test process: killing the CLI must not take the provider with it.
      service = await startLocalService({
        dataDir: join(root, 'service'),
        seed: SEED,
        // About 50 requests a second: batches take a few seconds each, 4 of them at a time.
        latencyMs: 40,
        concurrency: 2,
        maxActiveBatches: 4,
        // 429 and 500 are sent again in a later attempt, 400 becomes a failed row.
        failRate: 0.04,
        failCodes: ['rate_limit_exceeded', 'server_error', 'invalid_parameter_error'],
        // The account's call rates span all the processes; the CLI keeps its own limits per process.
        quotas: { enabled: false },
        log: tap.log,
      });
      tap.arm(service, FAULTS);
    });
    afterAll(() => service.close());

    it('uploads and creates every job exactly once (per the service) and brings every row back once', {
      timeout: 180_000,
    }, async () => {
      const started = Date.now();
      // Each spawn draws from its own stream: its choices hang on the seed, its number and what the
      // run has reached, not on how many draws earlier spawns happened to make.
      let next = random(SEED);
      const ids = Array.from({ length: ROWS }, (_, i) => `k${i + 1}`);
      const csv = fileWith(
        root,
        'table.csv',
        `id,text\n${ids.map((id, i) => `${id},review number ${i + 1}`).join('\n')}\n`,
      );
      const prep = join(root, 'prep');
      await prepare(csv, {
        outDir: prep,
        model: 'qwen-plus',
        template: '{{text}}',
        idColumn: 'id',
        maxLinesPerFile: PER_SHARD,
      });
      const runDir = join(root, 'run');
      // It exists from the start so its manifest can be watched; the run is made in it.
      mkdirSync(runDir);
      const flags = [
        '--provider',
        'local',
        '--base-url',
        service.url,
        '--poll-interval',
        '0.2',
        '--concurrency',
        '3',
      ];
      const submitArgs = ['submit', prep, '--run-dir', runDir, ...flags];
      const resumeArgs = ['resume', runDir, ...flags];

      const hits = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
      const tries = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
      const kills: Kill[] = [];
      let spawns = 0;
      let last: CliProcess | undefined;

      /** The next phase to aim at: submission phases while jobs wait to be submitted, then the others. */
      const choosePhase = (manifest: RunManifest | undefined): Phase | undefined => {
        const open = PHASES.filter((p) => hits[p] < KILLS_PER_PHASE && tries[p] < KILLS_PER_PHASE * 3);
        if (open.length === 0) return undefined;
        const submitting = !manifest || manifest.jobs.some((j) => SUBMIT_STATES.has(j.state));
        const early = open.filter((p) => SUBMITTING.has(p));
        const late = open.filter((p) => !SUBMITTING.has(p));
        if (submitting && early.length > 0) {
          // Submission phases come only while jobs wait: one not yet hit goes first.
          const unhit = early.filter((p) => hits[p] === 0);
          if (unhit.length > 0) return pick(unhit);
          // A run polls while it still submits: a poll is aimed at now and then, so that a loaded
          // machine, whose batches end about when its submissions do, still gets its poll kills.
          if (late.includes('poll') && next() < (hits.poll === 0 ? 0.5 : 0.2)) return 'poll';
          return pick(early);
        }
        return late.length > 0 ? pickLate(late) : pick(early);
      };
      const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
      // Polls come first: once the batches a resume finds ended are downloaded, only later attempts run.
      const pickLate = (late: readonly Phase[]): Phase =>
        late.includes('poll') && next() < 0.7 ? 'poll' : pick(late);
      const planFor = (phase: Phase, manifest: RunManifest | undefined): Plan => {
        const waiting = manifest?.jobs.filter((j) => SUBMIT_STATES.has(j.state)).length ?? 3;
        switch (phase) {
          case 'upload':
          case 'create':
          case 'intent':
            return {
              phase,
              skip: Math.floor(next() * Math.min(3, Math.max(1, waiting))),
              delayMs: phase === 'intent' ? 0 : Math.floor(next() * SLOW_MS),
            };
          case 'poll':
            return { phase, skip: Math.floor(next() * 8), delayMs: Math.floor(next() * 10) };
          case 'download':
            return { phase, skip: Math.floor(next() * 3), delayMs: Math.floor((next() * SLOW_MS) / 2) };
        }
      };

      /**
       * Kills `cli` as `plan` says, once the aimed-at moment comes; undefined when the process ended
       * first. A submission phase that never comes in this process (its submissions are over and it
       * polls) is re-aimed at a later phase still wanted, and so is a poll once downloads have begun.
       */
      const aim = (cli: CliProcess, plan: Plan): Promise<Shot | undefined> => {
        const base = tap.arrived();
        const made = (): RouteCounts => {
          const now = tap.arrived();
          for (const route of Object.keys(now) as Route[]) now[route] -= base[route];
          return now;
        };
        let known = new Set(intentsOf(manifestNow(runDir)));
        let intents = 0;
        let fired = false;
        return new Promise((resolve) => {
          let watcher: FSWatcher | undefined;
          const timers: NodeJS.Timeout[] = [];
          const finish = (shot: Shot | undefined) => {
            for (const t of timers) clearInterval(t);
            watcher?.close();
            resolve(shot);
          };
          const shoot = (intent?: string) => {
            if (cli.exited) return finish(undefined);
            const shot: Shot = {
              phase: plan.phase,
              plan,
              atMs: Date.now() - cli.startedAt,
              clockMs: Date.now() - started,
              inFlight: tap.inFlight(),
              made: made(),
              ...(intent !== undefined && { intent }),
            };
            cli.child.kill('SIGKILL');
            finish(shot);
          };
          const checkIntents = () => {
            if (fired || plan.phase !== 'intent') return;
            const now = intentsOf(manifestNow(runDir));
            for (const key of now) {
              if (!known.has(key) && ++intents > plan.skip) {
                fired = true;
                return shoot(key);
              }
            }
            known = new Set(now);
          };
          // Whether the run still has jobs to submit (read at most every 50 ms: check runs every 1 ms).
          let submittingReadAt = 0;
          let submitting = true;
          const stillSubmitting = () => {
            const now = Date.now();
            if (now - submittingReadAt >= 50) {
              submittingReadAt = now;
              submitting = manifestNow(runDir)?.jobs.some((j) => SUBMIT_STATES.has(j.state)) ?? true;
            }
            return submitting;
          };
          const check = () => {
            if (fired) return;
            // A run polls while it still submits (a resume polls first), so polling alone does not say
            // its submissions are over: the manifest does.
            if (SUBMITTING.has(plan.phase) && polls(made()) > 0 && !stillSubmitting()) {
              // This process has submitted all it had and polls: aim at a later phase if one is wanted.
              const later = (['poll', 'download'] as const).filter((p) => hits[p] < KILLS_PER_PHASE);
              if (later.length > 0) {
                tries[plan.phase]--;
                plan = planFor(pickLate(later), undefined);
                tries[plan.phase]++;
              }
            }
            // Downloads began before the polls aimed at came (the batches had ended meanwhile): the
            // process may finish without polling that often, so aim at a download if one is wanted,
            // unless no poll has landed yet and a download has (later attempts are polled too: a
            // loaded machine that missed the polls of the first ones has only those left).
            if (
              plan.phase === 'poll' &&
              made()['files.content'] > 0 &&
              hits.download < KILLS_PER_PHASE &&
              (hits.download === 0 || hits.poll > 0)
            ) {
              tries.poll--;
              plan = planFor('download', undefined);
              tries.download++;
            }
            if (plan.phase === 'intent') return;
            const route = TARGET[plan.phase];
            if ((plan.phase === 'poll' ? polls(made()) : made()[route]) > plan.skip) {
              fired = true;
              timers.push(setTimeout(() => shoot(), plan.delayMs));
            }
          };
          timers.push(setInterval(check, 1), setInterval(checkIntents, 10));
          try {
            watcher = watch(runDir, checkIntents);
          } catch {
            // The interval reads the manifest all the same.
          }
          void cli.closed.then(() => {
            if (!fired) finish(undefined);
          });
        });
      };

      /** Whether a kill landed in the phase it aimed at. */
      const landed = (shot: Shot, after: RunManifest | undefined): boolean => {
        switch (shot.phase) {
          case 'intent':
            return shot.intent !== undefined && intentsOf(after).includes(shot.intent);
          case 'poll':
            // Polling, not downloading, with batches the next process must poll again: their end (if
            // they ended at the service meanwhile) is not in the manifest.
            return (
              polls(shot.made) > 0 &&
              shot.inFlight['files.content'] === 0 &&
              (after?.jobs ?? []).some((j) => j.state === 'submitted')
            );
          default:
            return shot.inFlight[TARGET[shot.phase]] > 0;
        }
      };

      /** Every kill so far, one line each (with the output before it under BP_CRASH_LOG), and the last process's output. */
      const killLog = (): string => {
        const log = kills.map(
          (k, i) =>
            `  kill ${i + 1} (spawn ${k.spawn}, ${k.command}, t=${(k.clockMs / 1000).toFixed(1)} s): ${k.phase} skip ${k.plan.skip} +${k.plan.delayMs} ms, at ${k.atMs} ms, ${k.hit ? 'landed' : 'missed'}; in flight: ${describeCalls(k.inFlight)}${k.intent ? `; after intent ${k.intent}` : ''}; intents left: ${k.intents.map((x) => `${x.intent}${x.committed ? ' (committed)' : ''}`).join(', ') || 'none'}`,
        );
        if (process.env.BP_CRASH_LOG)
          for (let i = kills.length - 1; i >= 0; i--)
            log.splice(i + 1, 0, ...kills[i]!.output.map((l) => `      ${l}`));
        const tail = last ? `\nlast process output:\n${last.lines.slice(-20).join('\n')}` : '';
        return `seed ${SEED} (run again with BP_CRASH_SEED=${SEED})\n${log.join('\n')}${tail}`;
      };

      try {
        for (;;) {
          if (++spawns > MAX_SPAWNS) throw new Error(`the run did not finish in ${MAX_SPAWNS} spawns`);
          next = random((SEED + Math.imul(spawns, 0x9e3779b9)) >>> 0);
          const before = manifestNow(runDir);
          const phase = choosePhase(before);
          const args = before && next() < 0.5 ? resumeArgs : submitArgs;
          const cli = startCli(args, root);
          last = cli;
          let shot: Shot | undefined;
          if (phase) {
            tries[phase]++;
            shot = await aim(cli, planFor(phase, before));
          }
          const { code } = await cli.closed;
          if (!shot) {
            if (code !== 0)
              throw new Error(`${args[0]} exited with ${code}:\n${cli.lines.slice(-30).join('\n')}`);
            break;
          }
          // What the dead process had sent is handled before anyone looks (the service is not racing us).
          await tap.settle();
          const after = manifestNow(runDir);
          const records = await service.records();
          const hit = landed(shot, after);
          if (hit) hits[shot.phase]++;
          const kill: Kill = {
            ...shot,
            spawn: spawns,
            output: cli.lines.slice(-8),
            command: args[0]!,
            hit,
            intents: intentsOf(after).map((intent) => ({
              intent,
              committed: committed(intent, after!, records),
            })),
          };
          kills.push(kill);
          // Checked after every kill, so a double submission names the kill that caused it.
          if (after) expectNoDuplicates(after, records, `after kill ${kills.length}`);
        }

        for (const phase of PHASES)
          expect(hits[phase], `kills that landed during ${phase}`).toBeGreaterThanOrEqual(1);
        // Some kill left an intent whose call the service had committed: the resume had to find it.
        expect(kills.some((k) => k.intents.some((i) => i.committed))).toBe(true);
        // The service lost replies after committing, on uploads and on creates.
        const fired = service.faults
          .list()
          .filter((f) => f.kind === 'lose' && f.fired > 0)
          .map((f) => f.route);
        expect(fired).toEqual(expect.arrayContaining(['files.create', 'batches.create']));

        const finished = Date.now();
        service.faults.disarm();
        await checkRun(service, runDir, ids);
        const seconds = (ms: number) => (ms / 1000).toFixed(1);
        const elapsed = `${seconds(Date.now() - started)} s (last kill at ${seconds(kills.at(-1)?.clockMs ?? 0)} s, run done at ${seconds(finished - started)} s)`;
        const adopted = kills.reduce((n, k) => n + k.intents.filter((i) => i.committed).length, 0);
        if (process.env.BP_CRASH_LOG) console.log(killLog());
        console.log(
          `crash-resume seed ${SEED}: ${kills.length} kills (${kills.filter((k) => !k.hit).length} missed their phase) in ${spawns} spawns, ${elapsed}; landed ${PHASES.map((p) => `${p} ${hits[p]}`).join(', ')}; ${adopted} intents left with their call committed`,
        );
      } catch (error) {
        (error as Error).message = `${killLog()}\n${(error as Error).message}`;
        throw error;
      }
    });
  },
);

/**
 * Poll calls: retrieves, and the Batches list pages a run reads to poll many batches at once (a
 * lookup's list reads count too; a kill aimed at one lands before the run polls, and misses).
 */
function polls(counts: RouteCounts): number {
  return counts['batches.retrieve'] + counts['batches.list'];
}

/** Whether the service committed the call an intent (`<job>:uploading|creating`) stood for. */
function committed(intent: string, manifest: RunManifest, records: ServiceRecords): boolean {
  const [id, state] = intent.split(':');
  const job = manifest.jobs.find((j) => j.id === id)!;
  return state === 'uploading'
    ? (records.uploadsByFilename[job.file_name] ?? 0) > 0
    : (records.batchesByDsName[job.ds_name] ?? 0) > 0;
}

/** No file of this run uploaded twice and no batch of it created twice, by the service's records. */
function expectNoDuplicates(manifest: RunManifest, records: ServiceRecords, when: string): void {
  const files = Object.entries(records.uploadsByFilename).filter(
    ([name, n]) => name.startsWith(`${manifest.run_id}-`) && n > 1,
  );
  const batches = Object.entries(records.batchesByDsName).filter(
    ([name, n]) => name.startsWith(dsPrefix(manifest)) && n > 1,
  );
  if (files.length + batches.length === 0) return;
  const names = new Set([...files, ...batches].map(([name]) => name));
  const calls = records.calls.filter((c) => names.has(c.filename ?? '') || names.has(c.ds_name ?? ''));
  throw new Error(
    `${when}: uploaded more than once: ${JSON.stringify(files)}; created more than once: ${JSON.stringify(batches)}\n${calls.map((c) => JSON.stringify(c)).join('\n')}`,
  );
}

function dsPrefix(manifest: RunManifest): string {
  return `bp-${manifest.run_id.replace(/^run-/, '')}-`;
}

/** The finished run, by the service's records, the CLI's report and results, and the result files. */
async function checkRun(service: LocalService, runDir: string, ids: string[]): Promise<void> {
  const manifest = readManifestSync(runDir);
  expect(manifest.jobs.filter((j) => j.state !== 'done').map((j) => `${j.id} ${j.state}`)).toEqual([]);
  // Later attempts exist: requests that failed with a retryable code were sent again.
  expect(manifest.jobs.some((j) => j.attempt > 1)).toBe(true);

  // Every job's file uploaded once (by name) and its batch created once (by ds_name), and nothing else.
  const records = await service.records();
  expectNoDuplicates(manifest, records, 'at the end');
  for (const job of manifest.jobs) {
    expect(records.uploadsByFilename[job.file_name], job.file_name).toBe(1);
    expect(records.batchesByDsName[job.ds_name], job.ds_name).toBe(1);
    expect(records.batchesByInputFile[job.input_file_id!], job.input_file_id!).toBe(1);
  }
  const uploads = records.calls.filter(
    (c) => c.op === 'file.create' && c.filename?.startsWith(`${manifest.run_id}-`),
  );
  const creates = records.calls.filter(
    (c) => c.op === 'batch.create' && c.ds_name?.startsWith(dsPrefix(manifest)),
  );
  expect(uploads.map((c) => c.id).sort()).toEqual(manifest.jobs.map((j) => j.input_file_id).sort());
  expect(creates.map((c) => c.id).sort()).toEqual(manifest.jobs.map((j) => j.batch_id).sort());

  // The CLI's totals add up to the input rows.
  const status = await runCli(['status', runDir, '--offline', '--json']);
  expect(status.code, status.stderr).toBe(0);
  const report = JSON.parse(status.stdout) as {
    state: string;
    counts: Record<'rows' | 'rejected' | 'ok' | 'failed' | 'expired' | 'cancelled' | 'pending', number>;
  };
  expect(report.state).toBe('done');
  const c = report.counts;
  expect(c.rows).toBe(ids.length);
  expect(c.pending).toBe(0);
  expect(c.ok + c.failed + c.rejected + c.expired + c.cancelled).toBe(c.rows);
  expect(c.failed).toBeGreaterThan(0);

  // Every input row comes back exactly once in the final results.
  const download = await runCli(['download', runDir, '--provider', 'local', '--base-url', service.url]);
  expect(download.code, download.stderr).toBe(0);
  const results = readFileSync(join(runDir, 'results.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { custom_id: string; response?: { status_code?: number } | null });
  expect(results.map((r) => r.custom_id).sort()).toEqual([...ids].sort());
  const okIds = new Set(results.filter((r) => r.response?.status_code === 200).map((r) => r.custom_id));
  expect(okIds.size).toBe(c.ok);

  // And by the service's own result files: each batch answered each of its requests once, no row was
  // answered successfully twice, and the rows the results call ok are the ones the service answered.
  const client = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0 });
  const answered = new Map<string, number>();
  for (const job of manifest.jobs) {
    const batch = await client.batches.retrieve(job.batch_id!);
    expect(batch.status, job.id).toBe('completed');
    const lines = [
      ...(await linesOf(client, batch.output_file_id)),
      ...(await linesOf(client, batch.error_file_id)),
    ];
    expect(lines.length, `lines of ${job.id}`).toBe(job.lines);
    expect(new Set(lines.map((l) => l.custom_id)).size, `distinct lines of ${job.id}`).toBe(job.lines);
    for (const line of lines)
      if (line.response?.status_code === 200)
        answered.set(line.custom_id, (answered.get(line.custom_id) ?? 0) + 1);
  }
  expect([...answered].filter(([, n]) => n > 1)).toEqual([]);
  expect([...answered.keys()].sort()).toEqual([...okIds].sort());
}

async function linesOf(
  client: OpenAI,
  fileId: string | null | undefined,
): Promise<Array<{ custom_id: string; response?: { status_code?: number } | null }>> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { custom_id: string; response?: { status_code?: number } | null });
}
