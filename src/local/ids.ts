import { randomBytes, randomUUID } from 'node:crypto';

/** What a file holds, as the provider spells it in ids (`file-batch-...`, `file-batch_output-...`). */
export type FileKind = 'batch' | 'batch_output' | 'batch_error';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** Random lowercase alphanumerics (ids are also file names: no separators, no dots). */
export function randomToken(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += ALPHABET[byte % ALPHABET.length];
  return out;
}

export function newFileId(kind: FileKind): string {
  return `file-${kind}-${randomToken(24)}`;
}

/** DashScope batch ids are `batch_<uuid>`. */
export function newBatchId(): string {
  return `batch_${randomUUID()}`;
}

export function newRequestId(): string {
  return randomUUID();
}

// Ids come from URLs and bodies and name files in the data dir: only these shapes ever reach the
// file system, so no id can climb out of it ("..", "/", "\\", NUL are all outside the pattern).
const FILE_ID = /^file-[A-Za-z0-9_-]{1,128}$/;
const BATCH_ID = /^batch_[A-Za-z0-9_-]{1,128}$/;

export function isFileId(value: string): boolean {
  return FILE_ID.test(value);
}

export function isBatchId(value: string): boolean {
  return BATCH_ID.test(value);
}
