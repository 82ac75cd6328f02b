import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { ScannedRow } from '../core/csv/csv-scanner.js';
import { fieldText } from '../core/csv/csv-scanner.js';
import { customIdFor } from '../core/requests/custom-id.js';
import { compileLineTemplate, ID_SLOT, type LineTemplate } from '../core/requests/line-template.js';
import {
  embeddingShape,
  promptText,
  type Refused,
  RequestRules,
  type RuleOptions,
} from '../core/requests/request-rules.js';
import { compileTemplate } from '../core/requests/template.js';
import { ByteWriter } from '../internal/byte-writer.js';
import { ChunkReader } from '../internal/chunk-reader.js';
import { MAX_ESCAPE_GROWTH, writeJsonEscaped } from '../internal/json-bytes.js';
import type { WarningLog } from '../internal/warnings.js';
import { parseOptions } from '../options.js';
import type { ProviderProfile } from '../providers/profile.js';
import type { PreparedSummary, Sharder } from '../sinks/shard-requests.js';
import { CsvRowParser, CsvSourceOptions as CsvSchema, type CsvSourceOptions } from '../sources/csv-source.js';
import { RequestBuilder, type ToRequestsOptions } from '../transforms/to-requests.js';
import { toRejection } from '../transforms/validate-requests.js';
import type { Rejection, Row, RowValues } from '../types.js';

/** A request line serialized into the line buffer, before the run-wide checks. */
interface LineBytes {
  kind: 'line';
  index: number;
  file: string;
  line: number;
  custom_id: string;
  buffer: Buffer;
  start: number;
  end: number;
  /** The rendered input is empty (embeddings refuse that). */
  emptyInput: boolean;
}

export interface CsvBytesSettings {
  csv: CsvSourceOptions;
  requests: ToRequestsOptions;
  rules: RuleOptions;
  profile: ProviderProfile;
  sharder: Sharder;
  warnings: WarningLog;
}

/**
 * The prepare fast path for CSV with a template: field bytes go straight from the read buffer into
 * JSON-escaped request lines, with no JS strings for the text in between (decoding, JSON.stringify and
 * re-encoding emoji-heavy text cost several times the scan). Its output is byte-identical to the Row
 * path (csvSource -> toRequests -> validateRequests -> shardRequests); the tests hold it to that.
 * Rules that hold for every line alike are checked once on the line template; the rest per line.
 */
export async function prepareCsvBytes(
  input: string | Readable,
  file: string,
  settings: CsvBytesSettings,
): Promise<PreparedSummary> {
  const { profile, sharder, warnings } = settings;
  const csvOpts = parseOptions(CsvSchema, settings.csv, 'csvSource');
  const requestOpts = { endpoint: '/v1/chat/completions' as const, ...settings.requests };
  const quote = csvOpts.quote;
  const quoteByte = quote.charCodeAt(0);
  const rules = new RequestRules(profile, settings.rules, warnings);
  const out = new ByteWriter();
  const current: LineBytes = {
    kind: 'line',
    index: 0,
    file,
    line: 0,
    custom_id: '',
    buffer: out.buffer,
    start: 0,
    end: 0,
    emptyInput: false,
  };
  const inputColumns = compileTemplate(requestOpts.template!).columns;
  const emptyTemplate = requestOpts.template!.replace(/\{\{[^{}]*\}\}/g, '') === '';
  let template: LineTemplate | undefined;
  let staticRefusal: Refused | undefined;
  let inputSlots: number[] = [];
  let idColumn = -1;
  const maxIdBytes = profile.limits.maxCustomIdBytes;

  const parser: CsvRowParser<LineBytes> = new CsvRowParser(
    file,
    csvOpts,
    (index, line, scanned) => {
      if (!template) {
        const columns = parser.columns!;
        // The first good row runs through the real builder: the same run-level errors (a column the
        // template needs is missing) with the same messages, at the same row.
        RequestBuilder.create({ ...settings.requests, onWarning: undefined }).build(
          rowOf(index, file, line, scanned, columns, quote),
        );
        template = compileLineTemplate(
          RequestBuilder.create({ ...settings.requests, onWarning: undefined }),
          columns,
          file,
        );
        staticRefusal = rules.checkStatic(template.request, { index, file, line });
        inputSlots = inputColumns.map((name) => columns.indexOf(name));
        if (requestOpts.idColumn !== undefined) idColumn = columns.indexOf(requestOpts.idColumn);
      }
      return writeLine(template, index, line, scanned);
    },
    (item) => handle(item),
  );

  const writeLine = (t: LineTemplate, index: number, line: number, row: ScannedRow): LineBytes => {
    const keyed = idColumn !== -1 && idColumn < row.count;
    const custom_id = keyed
      ? customIdFor(index, fieldText(row, idColumn, quote), maxIdBytes)
      : customIdFor(index);
    // A key short enough to be used verbatim is copied from the row's bytes; anything else is written
    // from the id string.
    const keyBytes = keyed ? row.ends[idColumn]! - row.starts[idColumn]! : 0;
    const verbatim = keyBytes > 0 && keyBytes <= maxIdBytes;
    const idJson = verbatim ? '' : JSON.stringify(custom_id).slice(1, -1);
    let room = t.fixedBytes + (verbatim ? keyBytes * MAX_ESCAPE_GROWTH : idJson.length * 3);
    for (const slot of t.slots) {
      if (slot !== ID_SLOT && slot < row.count)
        room += (row.ends[slot]! - row.starts[slot]!) * MAX_ESCAPE_GROWTH;
    }
    // One line at a time: the previous one has been copied into its file's buffer by now.
    out.reset();
    out.reserve(room);
    const buffer = out.buffer;
    const start = out.pos;
    let pos = start;
    const slots = t.slots;
    for (let s = 0; s < slots.length; s++) {
      pos = copyBytes(buffer, pos, t.pieces[s]!);
      const slot = slots[s]!;
      if (slot === ID_SLOT) {
        if (verbatim)
          pos = writeJsonEscaped(
            buffer,
            pos,
            row.buffer,
            row.starts[idColumn]!,
            row.ends[idColumn]!,
            row.escaped[idColumn] ? quoteByte : -1,
          );
        else pos += buffer.write(idJson, pos, 'utf8');
      } else if (slot < row.count) {
        pos = writeJsonEscaped(
          buffer,
          pos,
          row.buffer,
          row.starts[slot]!,
          row.ends[slot]!,
          row.escaped[slot] ? quoteByte : -1,
        );
      }
    }
    pos = copyBytes(buffer, pos, t.pieces[slots.length]!);
    out.pos = pos;
    let emptyInput = false;
    if (emptyTemplate)
      emptyInput = inputSlots.every((c) => c === -1 || c >= row.count || row.ends[c] === row.starts[c]);
    // One object for every line: each is settled before the next is written.
    current.index = index;
    current.line = line;
    current.custom_id = custom_id;
    current.buffer = buffer;
    current.start = start;
    current.end = pos;
    current.emptyInput = emptyInput;
    return current;
  };

  const isEmbeddings = requestOpts.endpoint === '/v1/embeddings';
  const model = requestOpts.model!;
  const url = requestOpts.endpoint;
  const window = rules.contextWindow(model);

  let handled = 0;
  /**
   * Settles a row as soon as it is scanned: checks, then its file (or rejections.jsonl). Returns a
   * promise only when it must wait (a full file buffer, the tokenizer loading): the scan stops there
   * and goes on once it resolves. Nothing is held per row, so memory does not grow with the run.
   */
  const handle = (item: LineBytes | Rejection): Promise<void> | undefined => {
    handled++;
    if (item.kind === 'rejection') return sharder.reject(item);
    for (const w of template!.warnings) {
      warnings.warn(w.code, w.message, {
        file: item.file,
        line: item.line,
        row: item.index,
        custom_id: item.custom_id,
      });
    }
    const refused = check(item);
    if (refused === NEEDS_TOKENS)
      return rules.loadTokens().then(() => place(item, check(item) as Refused | undefined));
    return place(item, refused);
  };

  const place = (item: LineBytes, refused: Refused | undefined): Promise<void> | undefined =>
    refused
      ? sharder.reject(toRejection(refused, item))
      : sharder.addBytes(model, url, item, item.custom_id, item.buffer, item.start, item.end);

  const check = (item: LineBytes): Refused | undefined | typeof NEEDS_TOKENS => {
    const id = item.custom_id;
    if (staticRefusal) return { ...staticRefusal, custom_id: id };
    if (isEmbeddings && item.emptyInput)
      return { ok: false, custom_id: id, code: 'BP_BODY_INVALID', message: embeddingShape({ input: '' })! };
    const bytes = item.end - item.start - 1;
    const tooLarge = rules.checkLineBytes(bytes, id);
    if (tooLarge) return tooLarge;
    if (window !== undefined && bytes > window) {
      const body = (
        JSON.parse(item.buffer.toString('utf8', item.start, item.end)) as { body: Record<string, unknown> }
      ).body;
      const prompt = promptText(body, url);
      if (prompt.length * 3 > window && Buffer.byteLength(prompt) > window) {
        if (!rules.tokensLoaded) return NEEDS_TOKENS;
        const over = rules.checkContext(prompt, model, window, id);
        if (over) return over;
      }
    }
    // Without an id column every id is row-<n>: unique by construction, nothing to remember.
    return idColumn === -1 ? undefined : rules.claimId(id, item);
  };

  const reader = new ChunkReader(input, file, csvOpts.maxRowSize);
  const fileBytes = typeof input === 'string' ? (await stat(input).catch(() => undefined))?.size : undefined;
  try {
    let consumed = 0;
    let sized = false;
    let stopped = false;
    for (;;) {
      // After an early stop the rows already read come first: reading more now would only grow the buffer.
      const { data, last } = await reader.next(consumed, !stopped);
      const parsed = parser.parse(data, last);
      consumed = parsed.consumed;
      if (!sized && fileBytes !== undefined && handled > 0 && consumed > 0) {
        // Room for every id up front, estimated from the first rows: growing the set later would
        // briefly hold it twice.
        sized = true;
        rules.expectIds(Math.ceil((fileBytes / consumed) * handled * 1.1));
      }
      stopped = parsed.waiting !== undefined;
      if (parsed.waiting) await parsed.waiting;
      else if (last) break;
    }
  } finally {
    rules.close();
    await reader.close();
  }
  return sharder.finish();
}

/** The context check needs the tokenizer, which loads asynchronously. */
const NEEDS_TOKENS = Symbol('needs tokens');

/** Copies a template piece; short pieces by hand, where a native call costs more than the copy. */
function copyBytes(out: Buffer, pos: number, piece: Buffer): number {
  const n = piece.length;
  if (n > 64) {
    out.set(piece, pos);
    return pos + n;
  }
  for (let i = 0; i < n; i++) out[pos + i] = piece[i]!;
  return pos + n;
}

function rowOf(
  index: number,
  file: string,
  line: number,
  scanned: ScannedRow,
  columns: string[],
  quote: string,
): Row {
  const values: RowValues = {};
  for (let f = 0; f < columns.length; f++)
    values[columns[f]!] = f < scanned.count ? fieldText(scanned, f, quote) : '';
  return { kind: 'row', index, file, line, values };
}
