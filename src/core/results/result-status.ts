/**
 * What became of a row's request. `rejected`, `stale` (the row changed after its request was made)
 * and `missing` are set by the join, never by a result line.
 */
export const RESULT_STATUSES = [
  'ok',
  'truncated',
  'failed',
  'rejected',
  'expired',
  'cancelled',
  'invalid_output',
  'stale',
  'missing',
] as const;
export type ResultStatus = (typeof RESULT_STATUSES)[number];
