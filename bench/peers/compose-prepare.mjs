// batchpipe's job as a user composes it from the exported streams (the README's "From a script"),
// with the built package: source -> toRequests -> validateRequests -> shardRequests, the same template,
// system prompt, model and provider as the CLI's run in the bench. Prints rows and peak RSS as JSON.
// Usage: node compose-prepare.mjs table(.csv|.jsonl) outDir [plain|transform|maprows]
//   transform: a user's own object-mode Transform between the source and toRequests (one Row at a time)
//   maprows:   the same step through mapRows (the rows stay in the stages' batches)
// Both add a column the template does not read, so every variant writes the same requests.
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  csvSource,
  jsonlSource,
  mapRows,
  shardRequests,
  toRequests,
  validateRequests,
} from '../../dist/index.js';

const [input, outDir, mode = 'plain'] = process.argv.slice(2);
const SYSTEM =
  'Classify the sentiment of the product review as positive, negative or neutral. Reply with one word.';

const stages = [input.endsWith('.jsonl') ? jsonlSource(input) : csvSource(input)];
if (mode === 'transform')
  stages.push(
    new Transform({
      objectMode: true,
      transform(item, _encoding, done) {
        if (item.kind === 'row') item.values.review_chars = String(item.values.review).length;
        done(null, item);
      },
    }),
  );
if (mode === 'maprows')
  // The new key first: `{ ...values, key }` makes a new hidden class per row on Node 20 (docs/streams.md).
  stages.push(mapRows((values) => ({ review_chars: String(values.review).length, ...values })));
const files = shardRequests({ outDir, provider: 'local' });
await pipeline(
  ...stages,
  toRequests({
    model: 'qwen-plus',
    template: 'Title: {{title}}\nReview: {{review}}',
    system: SYSTEM,
    provider: 'local',
  }),
  validateRequests({ provider: 'local' }),
  files,
);
console.log(JSON.stringify({ rows: files.summary.requests, maxRssKb: process.resourceUsage().maxRSS }));
