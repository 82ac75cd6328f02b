import { describe, expect, it } from 'vitest';
import { jsonlSource } from '../../src/sources/jsonl-source.js';
import { requestSource } from '../../src/sources/request-source.js';
import type { Rejection, Row, SourceItem } from '../../src/types.js';
import { chunked, collect, fileWith, tempDir } from '../helpers.js';

const dir = tempDir();

describe('jsonlSource', () => {
  it('reads one object per line, skipping blank lines, with row and line numbers', async () => {
    const path = fileWith(dir, 'a.jsonl', '{"id":1,"text":"a"}\n\n  \r\n{"id":2,"nested":{"x":[1,2]}}\r\n');
    const items = await collect<SourceItem>(jsonlSource(path));
    expect(items).toEqual([
      { kind: 'row', index: 1, file: path, line: 1, values: { id: 1, text: 'a' } },
      { kind: 'row', index: 2, file: path, line: 4, values: { id: 2, nested: { x: [1, 2] } } },
    ]);
  });

  it('rejects invalid JSON, non-objects and invalid UTF-8 lines, naming the line, and keeps going', async () => {
    const content = Buffer.concat([
      Buffer.from('{"ok":1}\n{"broken":\n[1,2]\n"text"\nnull\n'),
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d, 0x0a]),
      Buffer.from('{"ok":2}'),
    ]);
    const items = await collect<SourceItem>(jsonlSource(fileWith(dir, 'bad.jsonl', content)));
    const rejections = items.filter((i): i is Rejection => i.kind === 'rejection');
    expect(rejections.map((r) => [r.index, r.line, r.code])).toEqual([
      [2, 2, 'BP_INPUT_PARSE'],
      [3, 3, 'BP_ROW_NOT_OBJECT'],
      [4, 4, 'BP_ROW_NOT_OBJECT'],
      [5, 5, 'BP_ROW_NOT_OBJECT'],
      [6, 6, 'BP_INPUT_ENCODING'],
    ]);
    expect(rejections[0]!.message).toMatch(/^invalid JSON: /);
    expect(items.filter((i): i is Row => i.kind === 'row').map((r) => r.values.ok)).toEqual([1, 2]);
  });

  it('keeps every digit of integers beyond 2^53 by reading them as strings', async () => {
    const path = fileWith(
      dir,
      'big.jsonl',
      '{"id":12345678901234567890,"small":42,"float":1.5e300,"text":"12345678901234567890"}\n',
    );
    const [row] = await collect<Row>(jsonlSource(path));
    expect(row!.values).toEqual({
      id: '12345678901234567890',
      small: 42,
      float: 1.5e300,
      text: '12345678901234567890',
    });
    const [lossy] = await collect<Row>(jsonlSource(path, { bigIntegers: 'number' }));
    expect(lossy!.values.id).toBe(12345678901234567000);
  });

  it('with badRows "fail", stops at the first bad line', async () => {
    const path = fileWith(dir, 'fail.jsonl', '{"a":1}\n{oops\n');
    await expect(collect(jsonlSource(path, { badRows: 'fail' }))).rejects.toMatchObject({
      code: 'BP_INPUT_PARSE',
      context: { file: path, line: 2, row: 2 },
    });
  });

  it('reads a stream in any chunking as it reads the file', async () => {
    const text = Array.from({ length: 50 }, (_, i) => JSON.stringify({ i, t: `é😀\n${'x'.repeat(i)}` })).join(
      '\n',
    );
    const fromFile = await collect<SourceItem>(jsonlSource(fileWith(dir, 'many.jsonl', text)));
    for (const size of [1, 3, 17, 1000]) {
      expect(await collect(jsonlSource(chunked(text, size), { name: fromFile[0]!.file }))).toEqual(fromFile);
    }
    expect(fromFile).toHaveLength(50);
  });

  it('skips a UTF-8 byte-order mark instead of rejecting row 1 with "Unexpected token \'\uFEFF\'"', async () => {
    const text = '\uFEFF{"id":1,"t":"a"}\r\n{"id":2,"t":"\uFEFFkept inside text"}\r\n';
    const path = fileWith(dir, 'bom.jsonl', text);
    const expected = [
      { kind: 'row', index: 1, file: path, line: 1, values: { id: 1, t: 'a' } },
      { kind: 'row', index: 2, file: path, line: 2, values: { id: 2, t: '\uFEFFkept inside text' } },
    ];
    expect(await collect(jsonlSource(path))).toEqual(expected);
    // The mark split across chunks, byte by byte.
    for (const size of [1, 2, 4])
      expect(await collect(jsonlSource(chunked(text, size), { name: path }))).toEqual(expected);
    // Only the very first bytes can be a mark; a file of just the mark holds no rows.
    expect(await collect(jsonlSource(fileWith(dir, 'only-bom.jsonl', '\uFEFF')))).toEqual([]);
  });

  it('reads request files with a byte-order mark as their lines, and says the mark was there', async () => {
    const line = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}';
    const source = requestSource(chunked(`\uFEFF${line}\n`, 2), { name: 'r.jsonl' });
    const items = await collect<{ kind: string; text: string; bytes: number }>(source);
    expect(items.map((i) => [i.kind, i.text, i.bytes])).toEqual([['request', line, line.length]]);
    expect(source.byteOrderMark).toBe(true);
    const plain = requestSource(chunked(`${line}\n`, 2), { name: 'r.jsonl' });
    await collect(plain);
    expect(plain.byteOrderMark).toBe(false);
  });

  it('stops at a line longer than maxRowSize, in a chunk or across chunks (a whole line in one chunk passed)', async () => {
    const text = `{"a":1}\n{"a":"${'x'.repeat(100)}"}\n`;
    for (const input of [fileWith(dir, 'long-in-chunk.jsonl', text), chunked(text, 40)]) {
      await expect(collect(jsonlSource(input, { maxRowSize: 50 }))).rejects.toMatchObject({
        code: 'BP_ROW_TOO_LARGE',
        context: { line: 2 },
      });
    }
  });

  it('warns once, with a count, when integers beyond 2^53 lose digits as numbers', async () => {
    const path = fileWith(
      dir,
      'lossy.jsonl',
      '{"id":12345678901234567890}\n{"id":1}\n{"id":98765432109876543210}\n',
    );
    const stream = jsonlSource(path, { bigIntegers: 'number' });
    await collect(stream);
    expect(stream.warnings.list()).toEqual([
      expect.objectContaining({
        code: 'BP_WARN_BIG_INTEGER',
        count: 2,
        first: { file: path, line: 1, row: 1 },
      }),
    ]);
    const exact = jsonlSource(path);
    await collect(exact);
    expect(exact.warnings.list()).toEqual([]);
  });

  it('stops at a line longer than maxRowSize', async () => {
    const path = fileWith(dir, 'long.jsonl', `{"a":"${'x'.repeat(3 << 20)}"}\n`);
    await expect(collect(jsonlSource(path, { maxRowSize: 1 << 20 }))).rejects.toMatchObject({
      code: 'BP_ROW_TOO_LARGE',
      context: { line: 1 },
    });
  });
});
