/**
 * Multimodal rows: image columns of URLs or local files (read, size-checked, sent as base64 data
 * URLs), several images per row, video as frame lists, in the OpenAI vision content-part format
 * (ref/openai-openapi-full.yaml, ChatCompletionRequestMessageContentPartImage: "Either a URL of the
 * image or the base64 encoded image data") and Qwen-VL's `{type: "video", video: [frames]}`; a vision
 * request to a model known to take text only is refused before upload.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { toRequests } from '../../src/transforms/to-requests.js';
import { validateRequests } from '../../src/transforms/validate-requests.js';
import type { Rejection, RequestItem } from '../../src/types.js';
import { row, tempDir, through } from '../helpers.js';

type Out = RequestItem | Rejection;
const dir = tempDir('bp-media-');
// A 1x1 PNG and a JPEG header: real image bytes, small.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1]);
writeFileSync(join(dir, 'cat.png'), PNG);
writeFileSync(join(dir, 'frame1.jpg'), JPEG);
writeFileSync(join(dir, 'frame2.jpg'), JPEG);
writeFileSync(join(dir, 'noext'), PNG);
writeFileSync(join(dir, 'notes.txt'), 'not an image');
const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString('base64')}`;

const contentOf = (out: Out) => {
  if (out.kind !== 'request') throw new Error(`rejected: ${out.code} ${out.message}`);
  return (out.request.body.messages as Array<{ content: unknown }>).at(-1)!.content;
};

describe('toRequests with image and video columns', () => {
  it('sends URLs as they are and local files as base64 data URLs, images then the prompt', async () => {
    const stage = toRequests({
      model: 'qwen-vl-plus',
      template: 'Describe {{name}}',
      imageColumn: 'img',
      mediaDir: dir,
    });
    const out = await through<Out>(stage, [
      row(1, { name: 'a', img: 'https://example.com/a.png' }),
      row(2, { name: 'b', img: 'cat.png' }),
      row(3, { name: 'c', img: join(dir, 'noext') }),
      row(4, { name: 'd', img: `file://${join(dir, 'cat.png')}` }),
    ]);
    expect(contentOf(out[0]!)).toEqual([
      { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
      { type: 'text', text: 'Describe a' },
    ]);
    expect(contentOf(out[1]!)).toEqual([
      { type: 'image_url', image_url: { url: dataUrl('image/png', PNG) } },
      { type: 'text', text: 'Describe b' },
    ]);
    // No extension: the type is read from the bytes.
    expect((contentOf(out[2]!) as Array<{ image_url?: { url: string } }>)[0]!.image_url!.url).toBe(
      dataUrl('image/png', PNG),
    );
    expect((contentOf(out[3]!) as Array<{ image_url?: { url: string } }>)[0]!.image_url!.url).toBe(
      dataUrl('image/png', PNG),
    );
  });

  it('sends several images per row (a JSON array in a cell, several columns) and a video as its frames', async () => {
    const stage = toRequests({
      model: 'qwen-vl-max',
      template: 'Compare',
      imageColumn: ['front', 'back'],
      videoColumn: 'clip',
      mediaDir: dir,
    });
    const [out] = await through<Out>(stage, [
      row(1, {
        front: '["https://example.com/1.png", "cat.png"]',
        back: 'https://example.com/2.png',
        clip: JSON.stringify(['frame1.jpg', 'frame2.jpg', 'https://example.com/f3.jpg']),
      }),
    ]);
    expect(contentOf(out!)).toEqual([
      { type: 'image_url', image_url: { url: 'https://example.com/1.png' } },
      { type: 'image_url', image_url: { url: dataUrl('image/png', PNG) } },
      { type: 'image_url', image_url: { url: 'https://example.com/2.png' } },
      {
        type: 'video',
        video: [dataUrl('image/jpeg', JPEG), dataUrl('image/jpeg', JPEG), 'https://example.com/f3.jpg'],
      },
      { type: 'text', text: 'Compare' },
    ]);
  });

  it('takes a JSONL array value as the list, and an empty cell as no image', async () => {
    const stage = toRequests({ model: 'qwen-vl-max', template: 'x', imageColumn: 'img', mediaDir: dir });
    const out = await through<Out>(stage, [row(1, { img: ['cat.png'] }), row(2, { img: '' })]);
    expect((contentOf(out[0]!) as unknown[]).length).toBe(2);
    expect(contentOf(out[1]!)).toBe('x');
  });

  it('rejects a row whose file is missing, too large or not an image (BP_MEDIA_INVALID), naming it', async () => {
    const stage = toRequests({
      model: 'qwen-vl-plus',
      template: 'x',
      imageColumn: 'img',
      idColumn: 'id',
      mediaDir: dir,
      maxImageBytes: PNG.length - 1,
    });
    const out = await through<Out>(stage, [
      row(1, { id: 'gone', img: 'missing.png' }),
      row(2, { id: 'big', img: 'cat.png' }),
      row(3, { id: 'text', img: 'frame1.jpg' }),
      row(4, { id: 'bad', img: '[1, 2]' }),
    ]);
    expect(out.map((o) => (o.kind === 'rejection' ? [o.custom_id, o.code] : o.kind))).toEqual([
      ['gone', 'BP_MEDIA_INVALID'],
      ['big', 'BP_MEDIA_INVALID'],
      'request',
      ['bad', 'BP_MEDIA_INVALID'],
    ]);
    expect((out[0] as Rejection).message).toContain('missing.png cannot be read: ENOENT');
    expect((out[1] as Rejection).message).toBe(
      `cat.png is ${PNG.length} bytes, at most ${PNG.length - 1} allowed (as base64 it must fit the provider's line limit)`,
    );
    expect((out[0] as Rejection).line).toBe(2);
    const unknown = await through<Out>(
      toRequests({ model: 'qwen-vl-plus', template: 'x', imageColumn: 'img', mediaDir: dir }),
      [row(1, { img: 'notes.txt' })],
    );
    expect(unknown[0]).toMatchObject({ code: 'BP_MEDIA_INVALID' });
  });

  it('bounds a local image by the line limit by default: base64 of it must fit 6 MB', async () => {
    const big = join(dir, 'big.png');
    writeFileSync(big, Buffer.concat([PNG, Buffer.alloc(4_500_001)]));
    const [out] = await through<Out>(
      toRequests({ provider: 'dashscope-cn', model: 'qwen-vl-plus', template: 'x', imageColumn: 'img' }),
      [row(1, { img: big })],
    );
    expect(out).toMatchObject({ kind: 'rejection', code: 'BP_MEDIA_INVALID' });
    expect((out as Rejection).message).toContain('at most 4500000 allowed');
  });
});

describe('a vision request to a text-only model', () => {
  it('is refused before upload for a model the profile knows to take text only (BP_MODEL_NOT_VISION)', async () => {
    const { Readable } = await import('node:stream');
    const run = async (model: string, provider: 'dashscope-cn' | 'openai' | 'local' = 'dashscope-cn') => {
      const out: Out[] = [];
      await pipeline(
        Readable.from([row(1, { img: 'https://example.com/a.png' })]),
        toRequests({ provider, model, template: 'x', imageColumn: 'img', enableThinking: false }),
        validateRequests({ provider }),
        async (items: AsyncIterable<Out>) => {
          for await (const item of items) out.push(item);
        },
      );
      return out[0]!;
    };
    for (const model of ['qwen-plus', 'qwen-max', 'deepseek-v3', 'qwen3.5-plus'])
      expect(await run(model)).toMatchObject({ kind: 'rejection', code: 'BP_MODEL_NOT_VISION' });
    expect((await run('qwen-plus')) as Rejection).toMatchObject({
      message: expect.stringContaining('qwen-plus takes text only'),
    });
    for (const model of ['qwen-vl-plus', 'qwen-vl-max', 'qwen-vl-ocr', 'qwen-vl-plus-2025-08-13'])
      expect((await run(model)).kind).toBe('request');
    // GPT-4o takes images; a model the profile does not know is the provider's to judge.
    expect((await run('gpt-4o-mini', 'openai')).kind).toBe('request');
    expect((await run('my-own-vlm', 'local')).kind).toBe('request');
  });
});
