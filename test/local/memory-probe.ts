/**
 * Run by memory.test.ts in its own process (`node --expose-gc --import tsx`): drives the local
 * service over HTTP through the openai SDK and prints, as one JSON line, the heap growth per call
 * after a full GC on each path, and the process warnings seen. A heap measured inside vitest's
 * worker would count the runner's own allocations; here nothing else runs.
 */
import OpenAI, { toFile } from 'openai';
import { startLocalService } from '../../src/local/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const warnings: string[] = [];
process.on('warning', (warning) => warnings.push(`${warning.name}: ${warning.message}`));

const client = (url: string) => new OpenAI({ baseURL: url, apiKey: 'local', maxRetries: 0 });

function heap(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

/** `count` calls, `parallel` at a time. */
async function calls(count: number, parallel: number, call: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) await call(next++);
    }),
  );
}

/**
 * Bytes the heap grew per call: three equal blocks of calls are measured and the smallest growth
 * kept. A leak grows the heap in all; noise (JIT, pools, lazily made caches) rarely in all. Two
 * blocks were not always enough: one-off growth (the tally of billed bodies, a Map entry per distinct
 * call by design, doubling its table; a memo filling) fell in both once, and a CI run read 535 bytes
 * a call on the test engine, where 90-100 is usual.
 */
async function growthPerCall(count: number, call: (i: number) => Promise<unknown>): Promise<number> {
  let least = Number.POSITIVE_INFINITY;
  for (let block = 1; block <= 3; block++) {
    const before = heap();
    await calls(count, 8, (i) => call(i + block * count));
    least = Math.min(least, heap() - before);
  }
  return least / count;
}

const upstream = await startLocalService({ seed: 1 });
const front = await startLocalService({
  engine: 'upstream',
  upstream: { url: upstream.url, retries: 0 },
  concurrency: 32,
});
const direct = client(upstream.url);
const forwarded = client(front.url);
const ask = (api: OpenAI, i: number) =>
  api.chat.completions.create({ model: 'qwen-plus', messages: [{ role: 'user', content: `call ${i}` }] });

const result: Record<string, unknown> = {};
const N = Number(process.argv[2] ?? 800);
// Warm-up of every path measured below, so the first measured block does not pay for it.
await calls(N, 8, (i) => ask(direct, -i));
await calls(N, 8, (i) => ask(forwarded, -i));
result.syncTestEngine = await growthPerCall(N, (i) => ask(direct, i));
result.syncUpstream = await growthPerCall(N, (i) => ask(forwarded, i));

// A batch through the upstream engine: each of its requests is an SDK call on the front service.
const lines = (n: number, from: number) =>
  Array.from(
    { length: n },
    (_, i) =>
      `${JSON.stringify({ custom_id: `r${from + i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'qwen-plus', messages: [{ role: 'user', content: `line ${from + i}` }] } })}\n`,
  ).join('');
const runBatch = async (api: OpenAI, text: string, metadata?: Record<string, string>) => {
  const file = await api.files.create({
    file: await toFile(Buffer.from(text), 'in.jsonl'),
    purpose: 'batch',
  });
  let batch = await api.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    ...(metadata ? { metadata } : {}),
  });
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    batch = await api.batches.retrieve(batch.id);
  }
  if (batch.status !== 'completed') throw new Error(`batch ${batch.id} ended ${batch.status}`);
};
await runBatch(forwarded, lines(N, 0));
let least = Number.POSITIVE_INFINITY;
for (let block = 1; block <= 2; block++) {
  const before = heap();
  await runBatch(forwarded, lines(N, block * N));
  least = Math.min(least, heap() - before);
}
result.batchUpstream = least / N;

// Requests with latency, many at once: each waits on the service's stop (no warning at 32 in flight).
await runBatch(direct, lines(200, 0), { bp_latency_ms: '5' });

// Distinct long system prompts: the test engine's memo of prompt token counts must not keep them.
const prompt = (i: number) => `${i} ${'a system prompt of some length '.repeat(32 * 1024)}`;
await calls(10, 2, (i) =>
  direct.chat.completions.create({
    model: 'qwen-plus',
    messages: [
      { role: 'system', content: prompt(i) },
      { role: 'user', content: 'x' },
    ],
  }),
);
const before = heap();
const LONG = 120;
await calls(LONG, 2, (i) =>
  direct.chat.completions.create({
    model: 'qwen-plus',
    messages: [
      { role: 'system', content: prompt(i + 10) },
      { role: 'user', content: 'x' },
    ],
  }),
);
result.longPromptsMB = (heap() - before) / 1024 / 1024;
result.promptMB = prompt(0).length / 1024 / 1024;
result.warnings = warnings;

await front.close();
await upstream.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
