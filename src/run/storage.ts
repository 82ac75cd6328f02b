import type { StorageLimits } from '../providers/profile.js';
import type { BatchApi, FileObject } from './batch-api.js';

/** Files an account keeps at the provider, as far as the list was read. */
export interface StorageUsage {
  files: number;
  bytes: number;
  /** False when the list was read only up to `maxFiles` items: the account holds at least this much. */
  complete: boolean;
}

/**
 * The account's stored files, counted from the Files list (every purpose: output and error files count
 * toward the limits too), read up to `maxFiles` items so a large account costs a bounded number of list
 * calls (DashScope lists 100 a page, 100 pages a minute).
 */
export async function storageUsage(
  api: BatchApi,
  maxFiles = Number.POSITIVE_INFINITY,
  each?: (file: FileObject) => void,
): Promise<StorageUsage> {
  let files = 0;
  let bytes = 0;
  for await (const file of api.files()) {
    if (files >= maxFiles) return { files, bytes, complete: false };
    files++;
    bytes += typeof file.bytes === 'number' ? file.bytes : 0;
    each?.(file);
  }
  return { files, bytes, complete: true };
}

/**
 * A warning when the account, with what a run adds, would pass the documented storage (DashScope:
 * "10,000 files / 100 GB per account", GB read as 10^9 bytes); undefined when it fits.
 */
export function storageWarning(
  limits: StorageLimits,
  usage: StorageUsage,
  adding: { files: number; bytes: number },
): string | undefined {
  const files = usage.files + adding.files;
  const bytes = usage.bytes + adding.bytes;
  const over: string[] = [];
  if (files > limits.maxFiles)
    over.push(
      `${files.toLocaleString('en-US')} files (the limit is ${limits.maxFiles.toLocaleString('en-US')})`,
    );
  if (bytes > limits.maxBytes) over.push(`${gb(bytes)} (the limit is ${gb(limits.maxBytes)})`);
  if (over.length === 0) return undefined;
  const held = `${usage.complete ? '' : 'at least '}${usage.files.toLocaleString('en-US')} files, ${gb(usage.bytes)}`;
  return `warning: the account holds ${held}; with this run's ${adding.files.toLocaleString('en-US')} files (inputs and their output and error files) and ${gb(adding.bytes)} of input it would reach ${over.join(' and ')}: uploads may be refused. Free space with \`batchpipe files prune\` (or --delete-input-files / --delete-output-files)`;
}

/** Bytes as decimal GB (10^9), as the providers' documents count them. */
export function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(bytes < 1e9 ? 3 : 1)} GB`;
}
