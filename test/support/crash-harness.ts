/**
 * Pieces of the kill -9 test (test/cli/crash-resume.test.ts): the CLI as a child process whose output
 * is kept line by line, a tap on the in-process local service that knows which API calls are in
 * flight at any moment (so a kill can be aimed at an upload, a create, a poll or a download, and the
 * test can wait until the service has finished what the dead process sent), and a run's manifest
 * read as it changes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ArmedFault, FaultRule, LocalService } from '../../src/local/index.js';
import { type RunManifest, readManifestSync } from '../../src/run/manifest.js';
import { CLI } from '../cli/run-cli.js';

/** The API calls a run makes, by the service's route names; `other` for the rest. */
export const ROUTES = [
  'files.create',
  'files.list',
  'files.content',
  'batches.create',
  'batches.list',
  'batches.retrieve',
  'other',
] as const;
export type Route = (typeof ROUTES)[number];
export type RouteCounts = Record<Route, number>;

/** The route of a call as the service logs it (`POST /v1/files 200 12ms`); null for its own routes. */
export function routeOf(method: string, path: string): Route | null {
  if (path.startsWith('/_batchpipe/')) return null;
  if (path === '/v1/files') return method === 'POST' ? 'files.create' : 'files.list';
  if (path === '/v1/batches') return method === 'POST' ? 'batches.create' : 'batches.list';
  if (method === 'GET' && /^\/v1\/files\/[^/]+\/content$/.test(path)) return 'files.content';
  if (method === 'GET' && /^\/v1\/batches\/[^/]+$/.test(path)) return 'batches.retrieve';
  return 'other';
}

function zero(): RouteCounts {
  return Object.fromEntries(ROUTES.map((r) => [r, 0])) as RouteCounts;
}

/**
 * Counts the calls a service received and finished, per route. A call is counted in when a fault
 * rule fires on it (the service decides faults before it does anything; `arm` insists on a rule that
 * always fires for every route, `*` last), and counted out when the service logs it (after its reply,
 * or after it dropped the connection). In flight = in - out. Both happen on the test's own event loop,
 * so a count read just before a kill is what the service was doing at that moment.
 */
export class CallTap {
  readonly #done = zero();
  readonly #routeOfRule = new Map<string, Route>();
  #service: LocalService | undefined;

  /** Pass as the service's `log` option. */
  readonly log = (line: string): void => {
    const match = /^([A-Z]+) (\S+) \d{3} /.exec(line);
    if (!match) return;
    const route = routeOf(match[1]!, match[2]!);
    if (route !== null) this.#done[route]++;
  };

  /** Arms `rules` on `service`, in order. Every route needs a last rule that always fires. */
  arm(service: LocalService, rules: FaultRule[]): ArmedFault[] {
    const always = new Set(
      rules.filter((r) => r.rate === undefined && r.times === undefined).map((r) => r.route),
    );
    const missing = ROUTES.filter((r) => r !== 'other' && !always.has(r));
    if (missing.length > 0 || rules.at(-1)?.route !== '*' || !always.has('*'))
      throw new Error(`CallTap.arm: no rule that always fires for ${missing.join(', ') || '*'}`);
    for (const rule of rules) {
      if (rule.kind === 'reset')
        throw new Error('CallTap.arm: a reset call is never logged, so never counted out');
      if (rule.route !== '*' && !(ROUTES as readonly string[]).includes(rule.route))
        throw new Error(`CallTap.arm: route ${rule.route} is neither a tracked route nor *`);
    }
    this.#service = service;
    const armed = service.faults.arm(rules);
    for (const fault of armed)
      this.#routeOfRule.set(fault.id, fault.route === '*' ? 'other' : (fault.route as Route));
    return armed;
  }

  /** Calls received so far, per route. */
  arrived(): RouteCounts {
    const counts = zero();
    for (const fault of this.#service?.faults.list() ?? []) {
      const route = this.#routeOfRule.get(fault.id);
      if (route !== undefined) counts[route] += fault.fired;
    }
    return counts;
  }

  /** Calls the service is handling right now, per route. */
  inFlight(): RouteCounts {
    const arrived = this.arrived();
    const counts = zero();
    for (const route of ROUTES) counts[route] = arrived[route] - this.#done[route];
    return counts;
  }

  /**
   * Resolves once the service has finished every call it received and none came in for `quietMs`
   * (bytes a killed process wrote just before it died may still be in the socket).
   */
  async settle(timeoutMs = 15_000, quietMs = 50): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = total(this.arrived());
    let quietSince = Date.now();
    for (;;) {
      await sleep(5);
      const arrived = total(this.arrived());
      if (arrived !== last) {
        last = arrived;
        quietSince = Date.now();
      }
      if (arrived === total(this.#done) && Date.now() - quietSince >= quietMs) return;
      if (Date.now() > deadline)
        throw new Error(
          `the service still handles calls after ${timeoutMs} ms: ${describeCalls(this.inFlight())}`,
        );
    }
  }
}

export function total(counts: RouteCounts): number {
  return ROUTES.reduce((sum, r) => sum + counts[r], 0);
}

/** `files.create 1, batches.retrieve 2` (non-zero routes only), or `none`. */
export function describeCalls(counts: RouteCounts): string {
  const parts = ROUTES.filter((r) => counts[r] !== 0).map((r) => `${r} ${counts[r]}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

/** The CLI in a child process: its output lines as they come, and how it ended. */
export interface CliProcess {
  child: ChildProcess;
  /** stderr and stdout lines, in arrival order, each after the ms since spawn (`+812 ms uploaded ...`). */
  lines: string[];
  startedAt: number;
  /** Resolves when the process has exited and its output is closed. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once the process has exited (by itself or killed). */
  readonly exited: boolean;
}

/** Spawns `node dist/cli/main.js ...args` in `cwd`. */
export function startCli(args: string[], cwd: string): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const startedAt = Date.now();
  for (const stream of [child.stdout!, child.stderr!])
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (l) =>
      lines.push(`+${Date.now() - startedAt} ms ${l}`),
    );
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    lines,
    startedAt,
    closed,
    get exited() {
      return child.exitCode !== null || child.signalCode !== null;
    },
  };
}

/** A run's manifest as it is on disk now (its snapshot and journal), or undefined when there is none yet. */
export function manifestNow(runDir: string): RunManifest | undefined {
  try {
    return readManifestSync(runDir);
  } catch (error) {
    // Not written yet (the snapshot is renamed into place whole, so never half written).
    if ((error as { code?: string }).code === 'BP_RUN_NOT_FOUND') return undefined;
    // Read between a new snapshot's rename and the removal of the old journal, or a journal line
    // being appended: read again.
    try {
      return readManifestSync(runDir);
    } catch {
      return undefined;
    }
  }
}

/** Jobs that hold an intent (`uploading`, `creating`): the call may or may not have landed. */
export function intentsOf(manifest: RunManifest | undefined): string[] {
  return (manifest?.jobs ?? [])
    .filter((j) => j.state === 'uploading' || j.state === 'creating')
    .map((j) => `${j.id}:${j.state}`);
}
