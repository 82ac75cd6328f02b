/**
 * `POST /files` (multipart, streamed to disk, with and without content-length), `GET /files`,
 * `GET /files/{id}`, `GET /files/{id}/content` (streamed), `DELETE /files/{id}`, and the service's
 * own records of what was uploaded and created.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { random } from '../fixtures/make-fixtures.js';
import { tempDir } from '../helpers.js';
import { chatLines, expectSchema, jsonl, raw, serviceFor, submit, upload, waitFor } from './support.js';

const dir = tempDir('bp-local-files-');
const { service, client } = await serviceFor({ limits: { maxUploadBytes: 64 * 1024 } });

/** A multipart body built by hand, so the test controls framing (the SDK always sends it whole). */
function multipart(parts: Array<{ name: string; value: string | Buffer; filename?: string }>) {
  const boundary = `----bp${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename ? `; filename="${part.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\n`));
    chunks.push(Buffer.isBuffer(part.value) ? part.value : Buffer.from(part.value));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

/** Sends `body` in small pieces with no content-length (transfer-encoding: chunked). */
function chunkedInit(body: Buffer, type: string): RequestInit {
  let at = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= body.length) return controller.close();
      controller.enqueue(body.subarray(at, at + 1000));
      at += 1000;
    },
  });
  return { method: 'POST', headers: { 'content-type': type }, body: stream, duplex: 'half' } as RequestInit;
}

describe('upload', () => {
  it('stores the bytes as sent and answers with a File object with status "uploaded"', async () => {
    const next = random(4);
    const bytes = Buffer.from(Array.from({ length: 20_000 }, () => Math.floor(next() * 256)));
    const file = await upload(client, dir, bytes, 'any-bytes.bin');
    expectSchema('OpenAIFile', file);
    expect(file).toMatchObject({
      object: 'file',
      bytes: 20_000,
      filename: 'any-bytes.bin',
      purpose: 'batch',
      status: 'uploaded',
    });
    const res = await fetch(`${service.url}/files/${file.id}/content`);
    expect(res.headers.get('content-length')).toBe('20000');
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    expect(await client.files.retrieve(file.id)).toEqual(file);
  });

  it('accepts a chunked upload without content-length, as the Node SDK may send it', async () => {
    const content = jsonl(chatLines(200));
    const { body, type } = multipart([
      { name: 'purpose', value: 'batch' },
      { name: 'file', value: content, filename: 'chunked.jsonl' },
    ]);
    const res = await raw(service, '/v1/files', chunkedInit(body, type));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      filename: 'chunked.jsonl',
      bytes: Buffer.byteLength(content),
      status: 'uploaded',
    });
    const back = await (await client.files.content(res.body.id as string)).text();
    expect(back).toBe(content);
  });

  it('survives clients that hang up mid-upload, storing nothing from them (bug: an aborted upload could crash the service)', async () => {
    const before = (await client.files.list()).data.length;
    const content = Buffer.from(jsonl(chatLines(100)));
    const { body, type } = multipart([
      { name: 'purpose', value: 'batch' },
      { name: 'file', value: content, filename: 'hangup.jsonl' },
    ]);
    const { request } = await import('node:http');
    const url = new URL(`${service.url}/files`);
    for (let cut = 100; cut < body.length; cut += Math.floor(body.length / 23)) {
      await new Promise<void>((resolve) => {
        const req = request(url, {
          method: 'POST',
          headers: { 'content-type': type, 'content-length': body.length },
        });
        req.on('error', () => resolve());
        req.on('response', (res) => {
          res.resume();
          resolve();
        });
        req.write(body.subarray(0, cut), () => setTimeout(() => req.destroy(), cut % 3));
      });
    }
    const file = await upload(client, dir, content, 'after-hangups.jsonl');
    expect(file.bytes).toBe(content.length);
    expect((await client.files.list()).data.length).toBe(before + 1);
  });

  it('takes the purpose field after the file part too', async () => {
    const { body, type } = multipart([
      { name: 'file', value: 'x\n', filename: 'late.jsonl' },
      { name: 'purpose', value: 'batch' },
    ]);
    const res = await raw(service, '/v1/files', { method: 'POST', headers: { 'content-type': type }, body });
    expect(res.status).toBe(200);
  });

  it('refuses what is not a batch upload with a 4xx naming the problem, storing nothing', async () => {
    const before = (await client.files.list()).data.length;
    const send = (parts: Parameters<typeof multipart>[0]) => {
      const { body, type } = multipart(parts);
      return raw(service, '/v1/files', { method: 'POST', headers: { 'content-type': type }, body });
    };
    const file = { name: 'file', value: 'x\n', filename: 'a.jsonl' };
    const noPurpose = await send([file]);
    expect(noPurpose.status).toBe(400);
    expect(noPurpose.body.error).toMatchObject({ param: 'purpose' });
    expect((await send([{ name: 'purpose', value: 'fine-tune' }, file])).status).toBe(400);
    const noFile = await send([{ name: 'purpose', value: 'batch' }]);
    expect(noFile.status).toBe(400);
    expect(noFile.body.error).toMatchObject({ param: 'file' });
    expect((await send([{ name: 'purpose', value: 'batch' }, file, { ...file, name: 'file' }])).status).toBe(
      400,
    );
    const json = await raw(service, '/v1/files', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"purpose":"batch"}',
    });
    expect(json.status).toBe(400);
    expectSchema('ErrorResponse', json.body);
    // Over the upload limit: 413, whether or not a length was declared.
    const big = multipart([
      { name: 'purpose', value: 'batch' },
      { ...file, value: Buffer.alloc(100 * 1024, 120) },
    ]);
    const declared = await raw(service, '/v1/files', {
      method: 'POST',
      headers: { 'content-type': big.type },
      body: big.body,
    });
    expect(declared.status).toBe(413);
    expect(declared.body.error).toMatchObject({ code: 'file_too_large' });
    expect((await raw(service, '/v1/files', chunkedInit(big.body, big.type))).status).toBe(413);
    expect((await client.files.list()).data.length).toBe(before);
    // Nothing half-written is left behind.
    expect(readdirSync(join(service.dataDir, 'tmp'))).toEqual([]);
  });

  it('surfaces refusals through the SDK as typed errors', async () => {
    await expect(
      client.files.create({ file: new File(['x'], 'a.jsonl'), purpose: 'assistants' }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });
});

describe('list, retrieve, content, delete', () => {
  it('lists newest first, pages with after and limit, filters by purpose, orders asc on request', async () => {
    const { client: fresh, service: svc } = await serviceFor();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await upload(fresh, dir, chatLines(2), `f${i}.jsonl`)).id);
    const done = await waitFor(fresh, (await submit(fresh, dir, chatLines(2))).id);
    const all = await raw(svc, '/v1/files');
    expectSchema('ListFilesResponse', all.body);
    expect((all.body.data as Array<{ id: string }>).map((f) => f.id)).toEqual([
      done.output_file_id,
      done.input_file_id,
      ...ids.slice().reverse(),
    ]);
    const page = await raw(svc, '/v1/files?limit=2&order=asc');
    expect((page.body.data as Array<{ id: string }>).map((f) => f.id)).toEqual(ids.slice(0, 2));
    expect(page.body).toMatchObject({ has_more: true, first_id: ids[0], last_id: ids[1] });
    const next = await raw(svc, `/v1/files?limit=2&order=asc&after=${ids[1]}`);
    expect((next.body.data as Array<{ id: string }>).map((f) => f.id)).toEqual(ids.slice(2, 4));
    const outputs = await fresh.files.list({ purpose: 'batch_output' });
    expect(outputs.data.map((f) => f.id)).toEqual([done.output_file_id]);
    expect((await raw(svc, '/v1/files?order=sideways')).status).toBe(400);
    expect((await raw(svc, '/v1/files?limit=0')).status).toBe(400);
  });

  it('streams content back and deletes files, but not the input of an unfinished batch', async () => {
    const { client: slow, service: svc } = await serviceFor({ latencyMs: 20, concurrency: 1 });
    const running = await submit(slow, dir, chatLines(50));
    const inUse = await raw(svc, `/v1/files/${running.input_file_id}`, { method: 'DELETE' });
    expect(inUse.status).toBe(400);
    expect(inUse.body.error).toMatchObject({ code: 'file_in_use' });
    await slow.batches.cancel(running.id);
    await waitFor(slow, running.id);
    const deleted = await slow.files.delete(running.input_file_id);
    expectSchema('DeleteFileResponse', deleted);
    expect(deleted).toEqual({ id: running.input_file_id, object: 'file', deleted: true });
    await expect(slow.files.retrieve(running.input_file_id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect((await raw(svc, `/v1/files/${running.input_file_id}/content`)).status).toBe(404);
    await expect(slow.files.delete(running.input_file_id)).rejects.toMatchObject({ status: 404 });
  });
});

describe('records', () => {
  it('counts every committed upload by name and hash, and every batch by ds_name and input file', async () => {
    const { client: fresh, service: svc } = await serviceFor();
    const content = jsonl(chatLines(3));
    const a = await upload(fresh, dir, content, 'shard-0001.jsonl');
    await upload(fresh, dir, content, 'shard-0001.jsonl');
    const b = await upload(fresh, dir, jsonl(chatLines(4)), 'shard-0002.jsonl');
    await fresh.batches.create({
      input_file_id: a.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { ds_name: 'run-1/shard-0001' },
    });
    const created = await fresh.batches.create({
      input_file_id: b.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { ds_name: 'run-1/shard-0002' },
    });
    await fresh.batches.create({
      input_file_id: b.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const finished = await waitFor(fresh, created.id);
    await fresh.files.delete(finished.output_file_id!);

    const records = await svc.records();
    expect(records.uploadsByFilename).toEqual({ 'shard-0001.jsonl': 2, 'shard-0002.jsonl': 1 });
    expect(Object.values(records.uploadsBySha256).sort()).toEqual([1, 2]);
    expect(records.batchesByDsName).toEqual({ 'run-1/shard-0001': 1, 'run-1/shard-0002': 1 });
    expect(records.batchesByInputFile).toEqual({ [a.id]: 1, [b.id]: 2 });
    expect(records.calls.map((c) => c.op)).toEqual([
      'file.create',
      'file.create',
      'file.create',
      'batch.create',
      'batch.create',
      'batch.create',
      'file.delete',
    ]);
    expect(records.calls.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // The same account over HTTP, and in the data dir as one line per call.
    const overHttp = await raw(svc, '/_batchpipe/records');
    expect(overHttp.body).toEqual(JSON.parse(JSON.stringify(records)));
    const log = readFileSync(join(svc.dataDir, 'records.jsonl'), 'utf8').trim().split('\n');
    expect(log).toHaveLength(7);
  });
});
