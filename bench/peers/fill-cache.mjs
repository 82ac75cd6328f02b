// Fills a result cache with an answer for every request of a prepared directory (as a run would after
// its batches), so a later prepare finds every request there. Untimed set-up of bench/cache.bench.ts.
// Usage: node fill-cache.mjs preparedDir cacheDir
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CacheWriter } from '../../dist/cache/result-cache.js';
import { requestKey } from '../../dist/core/requests/request-key.js';

const [prepared, cacheDir] = process.argv.slice(2);
const writer = new CacheWriter(cacheDir);
let n = 0;
for (const file of readdirSync(prepared)
  .filter((f) => /^requests-\d+\.jsonl$/.test(f))
  .sort()) {
  const text = readFileSync(join(prepared, file));
  let start = 0;
  for (let lf = text.indexOf(10); lf !== -1; lf = text.indexOf(10, start)) {
    const line = text.subarray(start, lf);
    const answer = {
      id: `batch_req_${n}`,
      custom_id: `row-${n + 1}`,
      response: {
        status_code: 200,
        body: {
          choices: [{ index: 0, message: { role: 'assistant', content: 'positive' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 90, completion_tokens: 1, total_tokens: 91 },
        },
      },
      error: null,
    };
    const waiting = writer.add(requestKey(line), Buffer.from(JSON.stringify(answer)));
    if (waiting) await waiting;
    n++;
    start = lf + 1;
  }
}
await writer.commit(Number.MAX_SAFE_INTEGER);
console.log(JSON.stringify({ rows: n }));
