// batchpipe's join as a user composes it from the exported streams (the README's "From a script"),
// with the built package: resultSource -> joinResults -> csvSink (or jsonlSink for a .jsonl output).
// Prints rows and peak RSS as JSON.
// Usage: node compose-join.mjs source(.csv|.jsonl) out(.csv|.jsonl) [plain|transform] results.jsonl [errors.jsonl ...]
//   transform: a user's own object-mode Transform between joinResults and the sink (one Row at a time)
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { csvSink, joinResults, jsonlSink, resultSource } from '../../dist/index.js';

const [source, out, mode, ...results] = process.argv.slice(2);
const join = joinResults({ source });
const stages = [resultSource(results), join];
if (mode === 'transform')
  stages.push(new Transform({ objectMode: true, transform: (row, _encoding, done) => done(null, row) }));
stages.push(out.endsWith('.jsonl') ? jsonlSink(out) : csvSink(out));
await pipeline(...stages);
console.log(JSON.stringify({ rows: join.summary.rows, maxRssKb: process.resourceUsage().maxRSS }));
