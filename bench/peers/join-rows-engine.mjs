// batchpipe's general join path (resultSource -> joinResults -> csvSink, Row objects throughout) on
// the same files, for comparison with the byte engine `batchpipe join` picks for CSV. Needs a build.
// Usage: node join-rows-engine.mjs source.csv id_column out.csv results.jsonl [errors.jsonl ...]
import { joinTable } from '../../dist/run/join.js';

const [source, idColumn, out, ...results] = process.argv.slice(2);
const summary = await joinTable({ source, idColumn, out, results, engine: 'rows' });
console.log(JSON.stringify({ rows: summary.rows, maxRssKb: process.resourceUsage().maxRSS }));
