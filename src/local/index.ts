import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BatchpipeError, isBatchpipeError } from '../errors.js';
import type { FileLimits } from '../providers/profile.js';
import { BatchStore } from './batches-store.js';
import { ServiceClock } from './clock.js';
import { createTestEngine } from './engine/test-engine.js';
import { FileStore } from './files-store.js';
import { lockDataDir, startError } from './lock.js';
import { type LocalServiceOptions, parseServiceOptions, type ServiceConfig } from './options.js';
import { RecordLog, type ServiceRecords } from './records.js';
import { type ServiceRules, serviceRules } from './rules.js';
import { Scheduler } from './scheduler.js';
import { createHttpServer } from './server.js';
import type { ServiceState } from './state.js';

export type { LocalServiceOptions } from './options.js';
export type { ServiceRecord, ServiceRecords } from './records.js';

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
  /** Stops accepting calls, lets running batches checkpoint, and releases the data dir. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the local OpenAI-compatible Files + Batches + Chat + Embeddings service in this process.
 * It keeps the provider's rules (`profile`), persists everything in `dataDir` and resumes unfinished
 * batches on start. Answers come from the test engine: deterministic, no inference. Rejects with
 * BP_INVALID_OPTION for bad options and BP_SERVICE_START when the port or data dir is unavailable.
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
  const unlock = await lockDataDir(dataDir);
  try {
    return await start(config, dataDir, ownDir, unlock);
  } catch (error) {
    await unlock();
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
    if (isBatchpipeError(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL')
      throw new BatchpipeError(
        'BP_SERVICE_START',
        `cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`,
        {},
        { cause: error },
      );
    if (error instanceof SyntaxError)
      throw new BatchpipeError(
        'BP_SERVICE_STATE',
        `the data dir ${dataDir} holds a state file that cannot be read: ${error.message}`,
        {},
        { cause: error },
      );
    throw startError(dataDir, error);
  }
}

async function start(
  config: ServiceConfig,
  dataDir: string,
  ownDir: boolean,
  unlock: () => Promise<void>,
): Promise<LocalService> {
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
  const engine = createTestEngine({ tokenizer: config.tokenizer, thinksByDefault: rules.thinksByDefault });
  const scheduler = new Scheduler({
    batches,
    files,
    clock,
    engine,
    concurrency: config.concurrency,
    maxActiveBatches: config.maxActiveBatches,
    checkpointMs: config.checkpointMs,
    log,
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
    },
    tmpDir,
  };
  await scheduler.restoreProgress();
  const server = createHttpServer(state, log);
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

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      });
      await scheduler.close();
      await records.close();
      await clock.close();
      await unlock();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    })();
    return closing;
  };

  return {
    url: `http://${urlHost(config.host)}:${port}/v1`,
    host: config.host,
    port,
    dataDir,
    profile: config.profile,
    limits: { ...rules.limits },
    records: () => records.read(),
    close,
  };
}

/** The host clients should dial: a wildcard bind is reached on loopback; IPv6 goes in brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
