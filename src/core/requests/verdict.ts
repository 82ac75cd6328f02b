import type { ErrorCode } from '../../errors.js';
import type { RequestLine } from '../../types.js';

/** A line that passed every rule, serialized once for the shard writer. */
export interface Accepted {
  ok: true;
  request: RequestLine;
  text: string;
  bytes: number;
}

/** The first rule a line broke. */
export interface Refused {
  ok: false;
  custom_id: string | null;
  code: ErrorCode;
  message: string;
}

export type Verdict = Accepted | Refused;
