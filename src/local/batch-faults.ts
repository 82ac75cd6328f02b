import { badRequest } from './api-error.js';
import { hashString, unitOf } from './engine/random.js';

/** Faults set on one batch through its metadata (or drawn for it from the service's rates). */
export interface BatchFaults {
  /** The window ends once this many requests were dispatched (by line number). */
  expireAfter: number | null;
  /** The service crashes and restarts once this many requests were dispatched; once per batch. */
  crashAfter: number | null;
  /** Validation fails with this code, as for a bad file (no request runs). */
  failFile: string | null;
  /** The crash has happened (saved before it, so the restarted service does not crash again). */
  crashed: boolean;
}

/** Metadata keys of batch faults, beside the knobs' keys (engine/knobs.ts). */
export const BATCH_FAULT_KEYS = [
  'bp_expire_after_requests',
  'bp_crash_after_requests',
  'bp_fail_file',
] as const;

/** Said after what a fault caused, so no one mistakes it for a real problem. */
export const FAULT_SUFFIX = ' [fault injected by the local service]';

/** The code a forced file failure reports unless `bp_fail_file` names one. */
export const FORCED_FILE_FAILURE = 'invalid_file';
const CODE = /^[A-Za-z][\w.-]{0,99}$/;

/** The batch's faults from its metadata (a 400 naming the key for a bad value); null when none. */
export function batchFaultsFrom(metadata: Record<string, string> | null): BatchFaults | null {
  if (!metadata) return null;
  const faults: BatchFaults = {
    expireAfter: count(metadata, 'bp_expire_after_requests'),
    crashAfter: count(metadata, 'bp_crash_after_requests'),
    failFile: null,
    crashed: false,
  };
  const fail = metadata.bp_fail_file;
  if (fail !== undefined && fail !== 'false' && fail !== '0') {
    if (fail !== 'true' && fail !== '1' && !CODE.test(fail))
      throw badRequest(
        `metadata.bp_fail_file must be "true" or an error code, got ${JSON.stringify(fail)}`,
        'metadata.bp_fail_file',
      );
    faults.failFile = fail === 'true' || fail === '1' ? FORCED_FILE_FAILURE : fail;
  }
  return faults.expireAfter === null && faults.crashAfter === null && faults.failFile === null
    ? null
    : faults;
}

/**
 * Adds a file failure drawn from the service's `fileFailRate` (by the batch's sequence number and
 * the seed, so the same batches fail on every run with the same calls).
 */
export function withDrawnFailure(
  faults: BatchFaults | null,
  seq: number,
  service: { fileFailRate: number; seed: number },
): BatchFaults | null {
  if (faults?.failFile || !(service.fileFailRate > 0)) return faults;
  if (unitOf(hashString(`file-failure:${seq}`, service.seed)) >= service.fileFailRate) return faults;
  return {
    ...(faults ?? { expireAfter: null, crashAfter: null, crashed: false }),
    failFile: FORCED_FILE_FAILURE,
  };
}

function count(metadata: Record<string, string>, key: string): number | null {
  const raw = metadata[key];
  if (raw === undefined) return null;
  const value = Number(raw);
  if (!/^\d{1,9}$/.test(raw.trim()) || !Number.isSafeInteger(value))
    throw badRequest(
      `metadata.${key} must be a whole number of requests, got ${JSON.stringify(raw)}`,
      `metadata.${key}`,
    );
  return value;
}
