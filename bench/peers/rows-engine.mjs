// batchpipe's general Row path (csvSource -> toRequests -> validateRequests -> shardRequests) on the
// same job, for comparison with the CSV fast path the CLI takes. Prints rows and peak RSS as JSON.
import { prepare } from '../../dist/index.js';

const [src, out, model, system, prefix] = process.argv.slice(2);
const result = await prepare(src, {
  outDir: out,
  model,
  system,
  template: `${prefix}{{review}}`,
  idColumn: 'id',
  engine: 'rows',
});
console.log(JSON.stringify({ rows: result.requests, maxRssKb: process.resourceUsage().maxRSS }));
