/**
 * Memory stays flat in the number of calls: measured in a process of its own (memory-probe.ts, with
 * --expose-gc) so only the service and its clients allocate. The bugs: the upstream engine handed the
 * service-lifetime stop signal to the openai SDK, which adds an abort listener per call and never
 * removes it (~1-2 KB a call, on synchronous calls and batch requests alike); more than ten requests
 * with latency waited on that one signal at once (MaxListenersExceededWarning); and the test engine's
 * memo of prompt token counts was capped at 1,024 entries whatever their size (1 MB prompts: ~1 GB).
 */

import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runNode } from '../cli/run-cli.js';

const PROBE = fileURLToPath(new URL('./memory-probe.ts', import.meta.url));

interface ProbeResult {
  syncTestEngine: number;
  syncUpstream: number;
  batchUpstream: number;
  longPromptsMB: number;
  promptMB: number;
  warnings: string[];
}

async function probe(calls: number): Promise<ProbeResult> {
  const { code, stdout, stderr } = await runNode(['--expose-gc', '--import', 'tsx', PROBE, String(calls)]);
  if (code !== 0) throw new Error(`memory probe exited ${code}: ${stderr}`);
  return JSON.parse(stdout.trim().split('\n').pop()!) as ProbeResult;
}

describe('memory per call', () => {
  it('the heap after GC stays flat over many synchronous calls, upstream calls and batch requests (the bug: an abort listener left per upstream call)', async () => {
    const result = await probe(800);
    // Leaking, the upstream paths grew 800-2,200 bytes a call; flat, they move by noise alone.
    expect(result.syncUpstream, JSON.stringify(result)).toBeLessThan(400);
    expect(result.batchUpstream, JSON.stringify(result)).toBeLessThan(400);
    expect(result.syncTestEngine, JSON.stringify(result)).toBeLessThan(400);
    // 120 distinct system prompts of ~1 MB: the memo keeps none of them (it kept all: ~116 MB).
    expect(result.promptMB).toBeGreaterThan(0.9);
    expect(result.longPromptsMB, JSON.stringify(result)).toBeLessThan(16);
    // 32 requests with latency at once: no MaxListenersExceededWarning (or any other warning).
    expect(result.warnings).toEqual([]);
  }, 240_000);
});
