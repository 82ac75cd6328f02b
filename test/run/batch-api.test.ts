/**
 * BatchApi's calls against the local service: what they leave behind on the run's detach signal.
 */
import { getEventListeners } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { BatchApi } from '../../src/run/batch-api.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('bp-batch-api-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ timeScale: 36_000 });
});
afterAll(() => service.close());

describe('BatchApi and the run signal', () => {
  it('leaves no listener on the signal after each call (bug: the SDK kept one per call, for the life of a run that polls for days)', async () => {
    const client = new OpenAI({ baseURL: service.url, apiKey: 'local', maxRetries: 0 });
    const line = JSON.stringify({
      custom_id: 'a',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] },
    });
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${line}\n`), 'one.jsonl'),
      purpose: 'batch',
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const api = new BatchApi(resolveConnection({ provider: 'local', baseURL: service.url }));
    const controller = new AbortController();
    for (let i = 0; i < 30; i++) await api.retrieve(batch.id, controller.signal);
    for (let i = 0; i < 3; i++) await api.download(file.id, join(dir, `copy-${i}.jsonl`), controller.signal);
    expect(readFileSync(join(dir, 'copy-2.jsonl'), 'utf8')).toBe(`${line}\n`);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('still aborts a call in flight when the run signal aborts', async () => {
    service.faults.arm({ route: 'batches.retrieve', kind: 'slow', delayMs: 5_000, times: 1 });
    const api = new BatchApi(resolveConnection({ provider: 'local', baseURL: service.url }), {
      timeoutMs: 60_000,
    });
    const controller = new AbortController();
    const started = Date.now();
    const call = api.retrieve('batch_does_not_matter', controller.signal);
    setTimeout(() => controller.abort(), 200);
    await expect(call).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(3_000);
    service.faults.disarm();
  });
});

describe('BatchApi downloads', () => {
  it('retries a body cut off mid-stream (bug: the network error was taken for the disk refusing, BP_OUTPUT_WRITE, and the run stopped)', async () => {
    const body = `${'x'.repeat(200_000)}\n`;
    let calls = 0;
    const server = createServer((req, res) => {
      calls++;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      if (calls === 1) {
        // Half the body, then the connection drops.
        res.write(body.slice(0, 100_000), () => req.socket.destroy());
        return;
      }
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      const api = new BatchApi(resolveConnection({ provider: 'local', baseURL: url }), { backoffMs: 10 });
      const path = join(dir, 'cut.jsonl');
      await api.download('file-cut', path);
      expect(calls).toBe(2);
      expect(readFileSync(path, 'utf8')).toBe(body);
      expect(existsSync(`${path}.partial`)).toBe(false);
    } finally {
      server.close();
    }
  });
});
