import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatchpipeError, isBatchpipeError } from '../errors.js';
import type { FileLimits } from '../providers/profile.js';
import { ApiError } from './api-error.js';
import { BatchChatGate } from './batch-chat.js';
import { BatchStore } from './batches-store.js';
import { ServiceClock } from './clock.js';
import { createServiceEngine } from './engine/create-engine.js';
import { type ArmedFault, type FaultEvent, FaultPlan, type FaultRule, parseFaultRules } from './faults.js';
import { FileStore } from './files-store.js';
import { isBatchId } from './ids.js';
import { announce, lockDataDir, startError, unannounce } from './lock.js';
import { type LocalServiceOptions, parseServiceOptions, type ServiceConfig } from './options.js';
import { Quotas } from './quotas.js';
import { RecordLog, type ServiceRecords } from './records.js';
import { type ServiceRules, serviceRules } from './rules.js';
import { Scheduler } from './scheduler.js';
import { createHttpServer } from './server.js';
import type { ServiceControl, ServiceState } from './state.js';
import { SyncTally, type SyncTallySnapshot } from './sync-tally.js';

export type { ArmedFault, FaultEvent, FaultKind, FaultRule } from './faults.js';
export { runningService } from './lock.js';
export type { LocalServiceOptions } from './options.js';
export type { ServiceRecord, ServiceRecords } from './records.js';
export type { SyncTallySnapshot } from './sync-tally.js';

/** The faults of a running service, armed and disarmed while it runs (also at `/_batchpipe/faults`). */
export interface FaultControl {
  /** Arms one rule or several; returns them with their ids. Throws BP_INVALID_OPTION for a bad rule. */
  arm(rules: FaultRule | FaultRule[]): ArmedFault[];
  /** Disarms one fault by id, or every fault; returns how many were disarmed. */
  disarm(id?: string): number;
  /** The armed faults with how often each matched and fired. */
  list(): ArmedFault[];
  /** The latest faults that fired, oldest first. */
  events(): FaultEvent[];
}

/** How to restart: `crash` skips the last checkpoint, as a kill would; `downMs` is real time down. */
export interface RestartOptions {
  crash?: boolean;
  downMs?: number;
}

/** A running local service. */
export interface LocalService {
  /** Base URL for OpenAI-compatible clients, ending in `/v1` (e.g. `http://127.0.0.1:8787/v1`). */
  url: string;
  host: string;
  port: number;
  /** Where its state lives (removed by `close()` when the service made it). */
  dataDir: string;
  profile: 'dashscope' | 'openai';
  /** The file limits batches are validated against (the profile's documented ones unless overridden). */
  limits: FileLimits;
  /** Every committed upload, batch creation, cancel and delete, with counts per file name and ds_name. */
  records(): Promise<ServiceRecords>;
  /** Faults armed now: errors, slow calls, dropped connections, replies lost after the commit. */
  faults: FaultControl;
  /**
   * Synchronous calls (chat completions, embeddings) so far: how many, how many in flight, and how
   * often each request body got a billed (200) answer. In memory, across restarts.
   */
  syncTally(): SyncTallySnapshot;
  /** Ends a batch's completion window now; what runs finishes, then it expires. */
  expire(batchId: string): Promise<void>;
  /**
   * Stops the service and starts it again on the same port and data dir; with `crash`, running
   * batches stop without a last checkpoint and every connection drops. Armed faults stay armed.
   */
  restart(options?: RestartOptions): Promise<void>;
  /** Stops accepting calls, lets running batches checkpoint, and releases the data dir. Idempotent. */
  close(): Promise<void>;
}

/** One run of the service on its data dir, from start to stop (a restart makes a new one). */
interface Instance {
  state: ServiceState;
  port: number;
  stop(crash: boolean): Promise<void>;
}

/**
 * Starts the local OpenAI-compatible Files + Batches + Chat + Embeddings service in this process.
 * It keeps the provider's rules (`profile`), persists everything in `dataDir` and resumes unfinished
 * batches on start. Answers come from the test engine (deterministic, no inference) or an upstream
 * server. Rejects with BP_INVALID_OPTION for bad options and BP_SERVICE_START when the port or data
 * dir is unavailable.
 */
export async function startLocalService(options?: LocalServiceOptions): Promise<LocalService> {
  const config = parseServiceOptions(options);
  const ownDir = config.dataDir === undefined;
  const dataDir = resolve(config.dataDir ?? (await mkdtemp(join(tmpdir(), 'batchpipe-local-'))));
  try {
    await mkdir(dataDir, { recursive: true });
  } catch (error) {
    throw startError(dataDir, error);
  }
  const faults = new FaultPlan(config.seed);
  faults.arm(config.faults);
  const tally = new SyncTally();

  let instance: Instance;
  let unlock: () => Promise<void>;
  let closed = false;
  // Restarts and the close run one after another, never over each other.
  let queue: Promise<void> = Promise.resolve();
  const control: ServiceControl = {
    restart: (how) => restart(how),
  };

  const open = async (port: number): Promise<Instance> => {
    unlock = await lockDataDir(dataDir);
    try {
      return await start({ ...config, port }, dataDir, faults, tally, control);
    } catch (error) {
      await unlock();
      throw startFailure(error, config, dataDir);
    }
  };

  try {
    instance = await open(config.port);
  } catch (error) {
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  const port = instance.port;
  const url = `http://${urlHost(config.host)}:${port}/v1`;
  await announce(dataDir, url);

  const restart = (how: { crash: boolean; downMs: number }): Promise<void> => {
    const next = queue.then(async () => {
      if (closed) return;
      await instance.stop(how.crash);
      await unlock();
      if (how.downMs > 0) await sleep(how.downMs);
      instance = await open(port);
    });
    queue = next.catch(() => {});
    return next;
  };

  const close = (): Promise<void> => {
    const next = queue.then(async () => {
      if (closed) return;
      closed = true;
      await instance.stop(false);
      await unannounce(dataDir);
      await unlock();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    });
    queue = next.catch(() => {});
    return next;
  };

  return {
    url,
    host: config.host,
    port,
    dataDir,
    profile: config.profile,
    limits: { ...instance.state.rules.limits },
    records: () => instance.state.records.read(),
    syncTally: () => tally.snapshot(),
    faults: {
      arm: (rules) => faults.arm(parseFaultRules(rules, 'faults.arm')),
      disarm: (id) => faults.disarm(id),
      list: () => faults.list(),
      events: () => faults.events(),
    },
    expire: async (batchId) => {
      const record = isBatchId(batchId) ? instance.state.batches.get(batchId) : undefined;
      if (!record)
        throw new BatchpipeError('BP_INVALID_OPTION', `expire: no batch ${JSON.stringify(batchId)}`);
      try {
        await instance.state.scheduler.expireNow(record);
      } catch (error) {
        if (error instanceof ApiError)
          throw new BatchpipeError('BP_INVALID_OPTION', `expire: ${error.message}`, { batch_id: batchId });
        throw error;
      }
    },
    restart: (how = {}) => restart({ crash: how.crash ?? false, downMs: how.downMs ?? 0 }),
    close,
  };
}

async function start(
  config: ServiceConfig,
  dataDir: string,
  faults: FaultPlan,
  tally: SyncTally,
  control: ServiceControl,
): Promise<Instance> {
  const log = config.log ?? (() => {});
  const tmpDir = join(dataDir, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  // Uploads cut off by a crash were never acknowledged.
  for (const name of await readdir(tmpDir)) await rm(join(tmpDir, name), { force: true });
  const files = await FileStore.open(join(dataDir, 'files'));
  const batches = await BatchStore.open(join(dataDir, 'batches'));
  const clock = await ServiceClock.open(
    dataDir,
    config.timeScale,
    Math.max(files.latestStamp(), batches.latestStamp()) * 1000,
  );
  const records = await RecordLog.open(join(dataDir, 'records.jsonl'));
  const rules: ServiceRules = serviceRules(config);
  const engine = createServiceEngine(config, rules);
  const scheduler = new Scheduler({
    batches,
    files,
    clock,
    engine,
    concurrency: config.concurrency,
    maxActiveBatches: config.maxActiveBatches,
    checkpointMs: config.checkpointMs,
    log,
    onCrash: () =>
      void control
        .restart({ crash: true, downMs: 0 })
        .catch((error: unknown) =>
          log(`restart after a crash failed: ${(error as Error)?.message ?? String(error)}`),
        ),
  });
  const state: ServiceState = {
    config,
    rules,
    clock,
    files,
    batches,
    scheduler,
    records,
    engine,
    knobs: {
      invalidJsonRate: config.invalidJsonRate,
      truncateRate: config.truncateRate,
      refuseRate: config.refuseRate,
      latencyMs: config.latencyMs,
      seed: config.seed,
      failRate: config.failRate,
      failCodes: config.failCodes,
    },
    tmpDir,
    faults,
    quotas: new Quotas(config, () => clock.nowMs()),
    batchChat: config.batchChat.enabled ? new BatchChatGate(config, () => clock.nowMs()) : null,
    syncCalls: 0,
    syncTally: tally,
    control,
  };
  await scheduler.restoreProgress();
  const { server, settled } = createHttpServer(state, log);
  try {
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolveListen();
      });
    });
  } catch (error) {
    await records.close();
    await clock.close();
    throw error;
  }
  scheduler.resumeAll();
  const { port } = server.address() as AddressInfo;

  const stop = async (crash: boolean) => {
    await new Promise<void>((done) => {
      server.close(() => done());
      server.closeAllConnections();
    });
    await (crash ? scheduler.crash() : scheduler.close());
    // Calls cut off mid-way finish (or fail) before the next run of the service reads the data dir.
    await settled();
    await records.close();
    await clock.close();
  };
  return { state, port, stop };
}

function startFailure(error: unknown, config: ServiceConfig, dataDir: string): unknown {
  if (isBatchpipeError(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL')
    return new BatchpipeError(
      'BP_SERVICE_START',
      `cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  if (error instanceof SyntaxError)
    return new BatchpipeError(
      'BP_SERVICE_STATE',
      `the data dir ${dataDir} holds a state file that cannot be read: ${error.message}`,
      {},
      { cause: error },
    );
  return startError(dataDir, error);
}

/** The host clients should dial: a wildcard bind is reached on loopback; IPv6 goes in brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
