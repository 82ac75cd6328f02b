import { BatchpipeError } from '../../errors.js';
import type { Rejection, SourcePosition } from '../../types.js';

/**
 * A user's function (`what`: "mapper", "mapRows") that threw on a row. On the table's first row it is
 * a bug in the function, not a bad row: thrown (BP_MAPPER_FAILED), which stops the pipeline. On a later
 * row it is that row's rejection, so every row still comes out once.
 */
export function mapperFailure(
  what: string,
  row: SourcePosition,
  custom_id: string | null,
  first: boolean,
  error: unknown,
): Rejection {
  const message = `${what} failed on row ${row.index}: ${(error as Error)?.message ?? String(error)}`;
  if (first)
    throw new BatchpipeError(
      'BP_MAPPER_FAILED',
      message,
      { file: row.file, line: row.line, row: row.index },
      { cause: error },
    );
  return {
    kind: 'rejection',
    index: row.index,
    file: row.file,
    line: row.line,
    custom_id,
    code: 'BP_MAPPER_FAILED',
    message,
  };
}
