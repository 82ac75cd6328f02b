import type { Duplex } from 'node:stream';
import { BatchpipeError } from '../errors.js';
import type { Connection } from '../providers/connection.js';
import type { RunCounts } from '../run/batch-run.js';
import { kHandOverResultFiles, takeBatches } from '../streams/batch-protocol.js';

/** What a sink that drives a run (batchSink, chatSink) learns as it goes, and shows on its stream. */
export interface RunSinkState {
  runDir: string | undefined;
  counts: RunCounts | undefined;
  /** A join downstream reads the run's results file itself. */
  handOver: boolean;
}

export function newRunSinkState(): RunSinkState {
  return { runDir: undefined, counts: undefined, handOver: false };
}

/** The local service has no fixed address: a sink sent to it must be told where it listens. */
export function requireBaseURL(connection: Connection, stage: string): void {
  if (!connection.baseURL)
    throw new BatchpipeError(
      'BP_USAGE',
      `${stage}: the local service needs its base URL: start it with startLocalService() and pass { baseURL: service.url }`,
    );
}

/**
 * Wires a run sink's Duplex: destroying it aborts `teardown` first (Duplex.from ends its generator
 * only at its next yield, so a run still polling would hold the run dir until its batches end), it
 * takes batches from the stage before it, offers its results file to a join downstream (which reads
 * it on worker threads), and shows `runDir` and `counts` once known.
 */
export function wireRunSink<T extends Duplex>(stream: T, state: RunSinkState, teardown: AbortController): T {
  const destroyStream = stream._destroy.bind(stream);
  stream._destroy = (error, callback) => {
    teardown.abort();
    destroyStream(error, callback);
  };
  takeBatches(stream);
  Object.defineProperty(stream, kHandOverResultFiles, {
    value: () => {
      state.handOver = true;
      return true;
    },
  });
  Object.defineProperty(stream, 'runDir', { get: () => state.runDir, enumerable: true });
  Object.defineProperty(stream, 'counts', { get: () => state.counts, enumerable: true });
  return stream;
}
