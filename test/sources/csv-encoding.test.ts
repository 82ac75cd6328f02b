import { describe, expect, it } from 'vitest';
import { csvSource } from '../../src/sources/csv-source.js';
import type { Row, SourceItem } from '../../src/types.js';
import { runCli } from '../cli/run-cli.js';
import { collect, fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-csv-encoding-');
const rowsOf = (items: SourceItem[]) => items.filter((i): i is Row => i.kind === 'row');
/** "日本" in Shift_JIS. */
const NIHON = Buffer.from([0x93, 0xfa, 0x96, 0x7b]);
/** A lead byte of Shift_JIS followed by a byte no character has there. */
const BAD_SJIS = Buffer.from([0x81, 0x20]);
const utf16 = (text: string) => Buffer.from(text, 'utf16le');

describe('csvSource: text not valid in its declared encoding stops the read (never U+FFFD in silence)', () => {
  it('reads valid Shift_JIS and UTF-16LE (with its BOM)', async () => {
    const sjis = fileWith(
      dir,
      'ok-sjis.csv',
      Buffer.concat([Buffer.from('id,text\n1,'), NIHON, Buffer.from('\n')]),
    );
    expect(rowsOf(await collect(csvSource(sjis, { encoding: 'shift_jis' })))[0]!.values).toEqual({
      id: '1',
      text: '日本',
    });
    const u16 = fileWith(
      dir,
      'ok-utf16.csv',
      Buffer.concat([Buffer.from([0xff, 0xfe]), utf16('id,text\r\n1,"a\r\nb 😀"\r\n')]),
    );
    expect(rowsOf(await collect(csvSource(u16, { encoding: 'utf-16le' })))[0]!.values).toEqual({
      id: '1',
      text: 'a\r\nb 😀',
    });
  });

  it('names the file, the line and the byte offset of Shift_JIS bytes that are not Shift_JIS', async () => {
    const head = Buffer.from('id,text\n1,ok\n2,"two\nlines"\n3,');
    const file = fileWith(
      dir,
      'bad-sjis.csv',
      Buffer.concat([head, NIHON, BAD_SJIS, Buffer.from('\n4,after\n')]),
    );
    await expect(collect(csvSource(file, { encoding: 'shift_jis' }))).rejects.toMatchObject({
      code: 'BP_INPUT_ENCODING',
      context: { file, line: 5 },
      message: `${file}:5: not valid shift_jis at byte offset ${head.length + NIHON.length}: the bytes here are not a character; is the encoding option right?`,
    });
  });

  it('finds a lone UTF-16 surrogate a few megabytes in, across reads, at its line', async () => {
    const rows = 60_000;
    const body = Array.from({ length: rows }, (_, i) => `${i},row number ${i} with some text`).join('\n');
    const good = utf16(`id,text\n${body}\n`);
    // A high surrogate followed by a comma: no character.
    const bad = Buffer.concat([good, utf16(`${rows},`), Buffer.from([0x3d, 0xd8]), utf16(',x\n')]);
    expect(bad.length).toBeGreaterThan(3 * 1024 * 1024);
    const file = fileWith(dir, 'bad-utf16.csv', bad);
    const items: SourceItem[] = [];
    const error = await (async () => {
      for await (const item of csvSource(file, { encoding: 'utf-16le' })) items.push(item as SourceItem);
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BP_INPUT_ENCODING', context: { file, line: rows + 2 } });
    expect((error as Error).message).toContain(
      `not valid utf-16le at byte offset ${good.length + utf16(`${rows},`).length}:`,
    );
    // Every row before it was read, none with a replacement character.
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((i) => i.kind === 'row' && !String(i.values.text).includes('\ufffd'))).toBe(true);
  });

  it('a UTF-8 read of a UTF-16 file says so; latin1 reads every byte', async () => {
    const u16 = fileWith(
      dir,
      'utf16-as-utf8.csv',
      Buffer.concat([Buffer.from([0xff, 0xfe]), utf16('id,text\n1,a\n')]),
    );
    await expect(collect(csvSource(u16))).rejects.toMatchObject({
      code: 'BP_INPUT_ENCODING',
      message: expect.stringContaining(
        'the header is not valid UTF-8 (the file starts with a UTF-16 byte order mark)',
      ),
    });
    const every = Buffer.from(Array.from({ length: 256 }, (_, b) => b).filter((b) => b > 0x22 && b !== 0x2c));
    const latin1 = fileWith(
      dir,
      'latin1-all.csv',
      Buffer.concat([Buffer.from('id,text\n1,'), every, Buffer.from('\n')]),
    );
    expect(rowsOf(await collect(csvSource(latin1, { encoding: 'latin1' })))[0]!.values.text).toBe(
      // WHATWG's latin1 is windows-1252: 0x80 is the euro sign.
      new TextDecoder('windows-1252').decode(every, { stream: true }),
    );
  });

  it('the command line stops with exit 1 and the coded error', async () => {
    const file = fileWith(
      dir,
      'cli-sjis.csv',
      Buffer.concat([Buffer.from('id,text\n1,'), BAD_SJIS, Buffer.from('\n')]),
    );
    const result = await runCli([
      'prepare',
      file,
      '--encoding',
      'shift_jis',
      '--template',
      '{{text}}',
      '--model',
      'qwen-plus',
      '--out',
      `${dir}/cli-out`,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      `error BP_INPUT_ENCODING: ${file}:2: not valid shift_jis at byte offset 10: the bytes here are not a character; is --encoding right?`,
    );
  });

  it('refuses an encoding for JSON Lines, which are UTF-8, instead of ignoring it', async () => {
    const file = fileWith(dir, 'rows.jsonl', '{"text":"a"}\n');
    const result = await runCli([
      'prepare',
      file,
      '--encoding',
      'shift_jis',
      '--template',
      '{{text}}',
      '--model',
      'qwen-plus',
      '--out',
      `${dir}/jsonl-out`,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      'error BP_INVALID_OPTION: JSON Lines are read as UTF-8, the only encoding JSON has: --encoding ("shift_jis") is for CSV and TSV',
    );
  });

  it('says so when the input ends inside a character', async () => {
    const cut = utf16('id,text\n1,ab\n');
    const file = fileWith(dir, 'cut-utf16.csv', Buffer.concat([cut, Buffer.from([0x41])]));
    await expect(collect(csvSource(file, { encoding: 'utf-16le' }))).rejects.toMatchObject({
      code: 'BP_INPUT_ENCODING',
      context: { file, line: 3 },
      message: `${file}:3: not valid utf-16le at byte offset ${cut.length + 1}: the input ends inside a character; is the encoding option right?`,
    });
  });
});
