// `prepare` with temperature 0 (every request a same draw), with or without the request keys and the
// result cache, through the built package. Prints rows (requests written + answered from the cache),
// peak RSS and CPU seconds as JSON.
// Usage: node cache-prepare.mjs table.csv outDir off|keyed [cacheDir]
//   off:   no deduplication, no cache (what prepare did before)
//   keyed: every line keyed (XXH3-128), looked up in the cache at cacheDir, remembered for deduplication
import { readdirSync, readFileSync } from 'node:fs';
import { prepare } from '../../dist/index.js';

// CPU seconds of each thread (Linux), sampled as the run goes: a thread's figure is gone from /proc
// once it ends. The busiest thread bounds the wall time on an idle machine, whatever the load now.
const threadCpu = new Map();
const HZ = 100;
function sampleThreads() {
  let tids = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threadCpu.set(tid, (Number(fields[11]) + Number(fields[12])) / HZ);
    } catch {}
  }
}
const sampler = setInterval(sampleThreads, 100);

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
sampleThreads();
clearInterval(sampler);
const main = threadCpu.get(String(process.pid)) ?? 0;
threadCpu.delete(String(process.pid));
const others = [...threadCpu.values()].sort((a, b) => b - a).filter((s) => s >= 0.05);
const reused = result.reuse ? result.reuse.cached + result.reuse.duplicates : 0;
console.log(
  JSON.stringify({
    rows: result.requests + reused,
    cached: result.reuse?.cached ?? 0,
    maxRssKb: process.resourceUsage().maxRSS,
    // Every thread's: the keys are made on the render threads.
    cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    // The main thread's, then the other threads' (render, hashing, GC helpers), busiest first.
    threadCpuSeconds: [main, ...others].map((s) => Number(s.toFixed(2))),
  }),
);
