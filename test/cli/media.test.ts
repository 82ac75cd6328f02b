/**
 * `--image-column` and `--video-column` end to end: the CLI reads the image files a table names,
 * sends them as base64 data URLs beside the prompt to the embedded local service, and writes the
 * answers back; a vision request to a text-only model is refused before anything is uploaded.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const dir = tempDir('bp-media-cli-');
const env = {
  BATCHPIPE_PROVIDER: '',
  BATCHPIPE_BASE_URL: '',
  BATCHPIPE_API_KEY: '',
  DASHSCOPE_API_KEY: '',
  OPENAI_API_KEY: '',
};
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

function requestLines(
  cwd: string,
): Array<{ custom_id: string; body: { messages: Array<{ content: unknown }> } }> {
  const runs = join(cwd, '.batchpipe', 'runs');
  const [run] = readdirSync(runs);
  return readFileSync(join(runs, run!, 'requests-00001.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('batchpipe run with image and video columns', () => {
  it('sends local images as base64 data URLs and URLs as they are, several per row, and joins the answers', async () => {
    const cwd = join(dir, 'ok');
    const media = join(cwd, 'media');
    mkdirSync(media, { recursive: true });
    writeFileSync(join(media, 'a.png'), PNG);
    writeFileSync(join(media, 'b.png'), PNG);
    const input = join(cwd, 'photos.csv');
    writeFileSync(
      input,
      [
        'id,photo,frames,question',
        'p1,a.png,"[""a.png"",""b.png""]",What is it?',
        'p2,https://example.com/x.png,,Colour?',
        'p3,"[""a.png"",""https://example.com/y.png""]",,Both?',
        'p4,missing.png,,Gone?',
      ].join('\n'),
    );
    const out = join(cwd, 'answers.csv');
    const result = await runCli(
      [
        'run',
        input,
        '--template',
        '{{question}}',
        '--model',
        'qwen-vl-plus',
        '--id-column',
        'id',
        '--image-column',
        'photo',
        '--video-column',
        'frames',
        '--media-dir',
        media,
        '--out',
        out,
      ],
      { cwd, env },
    );
    expect(result.code, result.stderr).toBe(0);
    const table = parse(readFileSync(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(table.map((r) => [r.id, r.status, r.error_code])).toEqual([
      ['p1', 'ok', ''],
      ['p2', 'ok', ''],
      ['p3', 'ok', ''],
      ['p4', 'rejected', 'BP_MEDIA_INVALID'],
    ]);
    expect(table[3]!.error_message).toContain('missing.png cannot be read');
    const data = `data:image/png;base64,${PNG.toString('base64')}`;
    const lines = requestLines(cwd);
    expect(lines.map((l) => l.custom_id)).toEqual(['p1', 'p2', 'p3']);
    expect(lines[0]!.body.messages.at(-1)!.content).toEqual([
      { type: 'image_url', image_url: { url: data } },
      { type: 'video', video: [data, data] },
      { type: 'text', text: 'What is it?' },
    ]);
    expect(lines[2]!.body.messages.at(-1)!.content).toEqual([
      { type: 'image_url', image_url: { url: data } },
      { type: 'image_url', image_url: { url: 'https://example.com/y.png' } },
      { type: 'text', text: 'Both?' },
    ]);
  });

  it('refuses a vision run on a text-only model before anything is uploaded (BP_MODEL_NOT_VISION)', async () => {
    const cwd = join(dir, 'text-only');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 'a.png'), PNG);
    const input = join(cwd, 'photos.csv');
    writeFileSync(input, 'id,photo\n1,a.png\n2,a.png\n');
    const result = await runCli(
      [
        'run',
        input,
        '--template',
        'What is it?',
        '--model',
        'qwen-plus',
        '--image-column',
        'photo',
        '--out',
        join(cwd, 'out.csv'),
      ],
      { cwd, env },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('BP_MODEL_NOT_VISION');
    expect(result.stderr).toContain('qwen-plus takes text only');
    // Nothing reached the service: no file was uploaded, no batch created.
    const records = join(cwd, '.batchpipe', 'local', 'records.jsonl');
    const calls = existsSync(records) ? readFileSync(records, 'utf8').trim() : '';
    expect(calls).toBe('');
  });
});
