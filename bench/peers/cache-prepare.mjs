// `prepare` with temperature 0 (every request a same draw), with or without the request keys and the
// result cache, through the built package. Prints rows (requests written + answered from the cache),
// peak RSS and CPU seconds as JSON.
// Usage: node cache-prepare.mjs table.csv outDir off|keyed [cacheDir]
//   off:   no deduplication, no cache (what prepare did before)
//   keyed: every line keyed (SHA-256), looked up in the cache at cacheDir, remembered for deduplication
import { prepare } from '../../dist/index.js';

const [input, outDir, mode, cacheDir] = process.argv.slice(2);
const result = await prepare(input, {
  outDir,
  model: 'qwen-plus',
  template: 'Title: {{title}}\nReview: {{review}}',
  system:
    'Classify the sentiment of the product review as positive, negative or neutral. Reply with one word.',
  temperature: 0,
  provider: 'local',
  dedup: mode === 'keyed' ? 'auto' : false,
  ...(mode === 'keyed' && cacheDir && { cacheDir }),
});
const reused = result.reuse ? result.reuse.cached + result.reuse.duplicates : 0;
console.log(
  JSON.stringify({
    rows: result.requests + reused,
    cached: result.reuse?.cached ?? 0,
    maxRssKb: process.resourceUsage().maxRSS,
    // Every thread's: the keys are made on the render threads.
    cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  }),
);
