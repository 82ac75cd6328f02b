import { Transform } from 'node:stream';
import { z } from 'zod';
import {
  ParseResultsFields,
  ResultParser,
  type ResultProblems,
  type ResultRecord,
} from '../core/results/result-parser.js';
import { parseOptions } from '../options.js';

const ParseResultsOptions = z.strictObject({
  /** File name for lines given as strings or objects. Default "<results>". */
  name: z.string().min(1).optional(),
  ...ParseResultsFields,
});
export type ParseResultsOptions = z.input<typeof ParseResultsOptions>;

/** The Transform parseResults returns: `problems` counts lines that could not be used. */
export interface ParseResultsStream extends Transform {
  readonly problems: ResultProblems;
}

/**
 * Output and error lines -> ResultRecords, one per usable line. Takes what a pipeline has: lines as
 * strings, Rows from `jsonlSource`, parsed line objects (OpenAI, DashScope or vLLM shapes; chat,
 * responses or embeddings), Rejections from `jsonlSource` (reported as problems). With `labels` or
 * `schema` the answer is parsed and validated with zod; an answer that fails becomes `invalid_output`
 * with the issue. A line without a custom_id cannot be joined: it is reported (never a crash).
 */
export function parseResults(options: ParseResultsOptions = {}): ParseResultsStream {
  const { name, ...parse } = parseOptions(ParseResultsOptions, options, 'parseResults');
  const parser = new ResultParser(parse);
  const file = name ?? '<results>';
  let lines = 0;
  const stream = new Transform({
    objectMode: true,
    highWaterMark: 1024,
    transform(item: unknown, _encoding, done) {
      let record: ResultRecord | undefined;
      try {
        record = parser.fromItem(item, file, ++lines);
      } catch (error) {
        return done(error as Error);
      }
      done(null, record);
    },
  }) as ParseResultsStream;
  Object.defineProperty(stream, 'problems', { value: parser.problems, enumerable: true });
  return stream;
}
