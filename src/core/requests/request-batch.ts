import { LINES_POOL } from '../../internal/buffer-pool.js';
import type { WarningCall } from '../../internal/warnings.js';
import type { ProviderProfile } from '../../providers/profile.js';
import type { Rejection, RequestItem, RequestLine, SourcePosition } from '../../types.js';
import { customIdFor } from './custom-id.js';
import type { LineTemplate } from './line-template.js';
import type { Refused } from './verdict.js';

const LF = 0x0a;

/**
 * Where a batch of a stream with marked repeats came (`batch`: 0, 1, ... in the order made): a line
 * marked as a repeat is one only if every batch before it reached the sharder.
 */
export interface KeySeenOrder {
  stream: object;
  batch: number;
}

/**
 * Request lines in source order, as batchpipe's stages hand them to each other: entry `i` is a
 * request or a rejection. A request is held as serialized bytes (a line a template rendered: no
 * object is ever built for it), as text, or as an object (a mapper's), and turned into the other
 * forms only when a stage asks. Batches are owned by the stage that holds them: validation turns
 * entries into rejections in place.
 */
export class RequestBatch {
  readonly kind = 'request-batch';
  length = 0;
  #indexes: number[] = [];
  #lines: number[] = [];
  #files: string[] = [];
  #rejections: Array<Rejection | undefined> = [];
  /** Undefined for a rendered line whose id is `row-<n>`, made when first asked for. */
  #ids: Array<string | undefined> = [];
  #models: string[] = [];
  #urls: string[] = [];
  #requests: Array<RequestLine | undefined> = [];
  #texts: Array<string | undefined> = [];
  /** Rendered lines: entry i is data[starts[i], ends[i]) (its newline included) when starts[i] >= 0. */
  data: Buffer | undefined;
  #starts: number[] = [];
  #ends: number[] = [];
  /** Entries whose rendered input text is empty (an embeddings request cannot be). */
  #emptyInput: boolean[] = [];
  /** Every rendered entry was made from this template: rules that hold for all its lines are checked once. */
  template: LineTemplate | undefined;
  /** With `template`: each entry's row hash (RowHash), stored by the sharder for the join's check. */
  rowHashes: Float64Array | undefined;
  /** With `template` and the `requestKeys` option: each entry's request key (16 bytes), made as it was rendered. */
  requestKeys: Uint8Array | undefined;
  /**
   * With `requestKeys`: where each entry's record of `request-keys.tsv` is in `data`, after the lines,
   * its kind undecided (key-records.ts): entry i's is `keyRecordAt[i]`..`keyRecordAt[i + 1]`.
   */
  keyRecordAt: Int32Array | undefined;
  /**
   * With `requestKeys` and `markRepeats`: per entry, whether its key is new in the stream, came
   * earlier, was not kept or is not there (KEY_NEW, KEY_REPEAT, KEY_UNKEPT, KEY_NONE of key-set.ts),
   * as the table where the lines were rendered said. Undefined for a batch rendered without it.
   */
  keySeen: Uint8Array | undefined;
  /** With `markRepeats`: the stream the batch was made in and its place there (see KeySeenOrder). */
  keySeenOrder: KeySeenOrder | undefined;
  /** The custom_ids are `row-<n>`: unique by construction, nothing to remember to check them. */
  uniqueIds = false;
  /**
   * Rendered entries made without a template (a mapper's lines, serialized on another thread) were
   * checked there against every rule a line breaks alone, under this provider profile (and no
   * thinking-default warning), with the warnings those checks raised, by entry; a validation under
   * the same profile need not parse them again.
   */
  checkedAlone:
    | {
        profile: ProviderProfile;
        refusals: ReadonlyMap<number, Refused>;
        warnings: ReadonlyArray<[number, WarningCall]>;
      }
    | undefined;

  /** A write from `data` still under way (key records are written where they are): `release` waits for it. */
  #dataHeld: Promise<void> | undefined;

  /** `data` is read until `until` settles (the latest such write: they end in order). */
  holdData(until: Promise<void>): void {
    this.#dataHeld = until;
  }

  /** Hands the rendered lines' buffer back (once no write reads it): the batch must not be read after this. */
  release(): void {
    const data = this.data;
    this.data = undefined;
    const held = this.#dataHeld;
    if (!held) {
      LINES_POOL.give(data);
      return;
    }
    this.#dataHeld = undefined;
    // Failed or not, the write no longer reads the buffer (its failure is thrown where it was started).
    const give = () => LINES_POOL.give(data);
    held.then(give, give);
  }

  /** A batch of request items as a user's stage (or `requestSource`) hands them on. */
  static of(items: ReadonlyArray<RequestItem | Rejection>): RequestBatch {
    const batch = new RequestBatch();
    for (const item of items) {
      if (item.kind === 'rejection') batch.addRejection(item);
      else batch.addRequest(item, item.request, item.text);
    }
    return batch;
  }

  /**
   * A template's lines for `n` entries at once: entry i at `positions`' entry i, its line
   * data[starts[i], ends[i]) (its newline included) or, where starts[i] is -1, the rejection
   * `rejected(i)` gives. Each field is stored in place (a push per field and line was a tenth of the
   * reading thread's time at a million rows). `ids` undefined: every id is `row-<n>`.
   */
  static ofLines(
    template: LineTemplate,
    positions: { length: number; index(i: number): number; file(i: number): string; line(i: number): number },
    ids: ReadonlyArray<string> | undefined,
    starts: Int32Array,
    ends: Int32Array,
    empty: Uint8Array,
    rejected: (i: number) => Rejection,
  ): RequestBatch {
    const batch = new RequestBatch();
    const n = positions.length;
    batch.template = template;
    batch.length = n;
    const indexes = new Array<number>(n);
    const lines = new Array<number>(n);
    const files = new Array<string>(n);
    const rejections = new Array<Rejection | undefined>(n);
    const batchIds = new Array<string | undefined>(n);
    const models = new Array<string>(n);
    const urls = new Array<string>(n);
    const from = new Array<number>(n);
    const to = new Array<number>(n);
    const emptyInput = new Array<boolean>(n);
    batch.#indexes = indexes;
    batch.#lines = lines;
    batch.#files = files;
    batch.#rejections = rejections;
    batch.#ids = batchIds;
    batch.#models = models;
    batch.#urls = urls;
    batch.#requests = new Array<RequestLine | undefined>(n);
    batch.#texts = new Array<string | undefined>(n);
    batch.#starts = from;
    batch.#ends = to;
    batch.#emptyInput = emptyInput;
    for (let i = 0; i < n; i++) {
      indexes[i] = positions.index(i);
      lines[i] = positions.line(i);
      files[i] = positions.file(i);
      const start = starts[i]!;
      if (start >= 0) {
        rejections[i] = undefined;
        batchIds[i] = ids?.[i];
        models[i] = template.model;
        urls[i] = template.url;
        from[i] = start;
        to[i] = ends[i]!;
        emptyInput[i] = empty[i] === 1;
      } else {
        const rejection = rejected(i);
        rejections[i] = rejection;
        batchIds[i] = rejection.custom_id ?? '';
        models[i] = '';
        urls[i] = '';
        from[i] = -1;
        to[i] = -1;
        emptyInput[i] = false;
      }
    }
    return batch;
  }

  #add(at: SourcePosition): number {
    const i = this.length++;
    this.#indexes.push(at.index);
    this.#lines.push(at.line);
    this.#files.push(at.file);
    return i;
  }

  addRejection(rejection: Rejection): void {
    this.#add(rejection);
    this.#rejections.push(rejection);
    this.#ids.push(rejection.custom_id ?? '');
    this.#models.push('');
    this.#urls.push('');
    this.#requests.push(undefined);
    this.#texts.push(undefined);
    this.#starts.push(-1);
    this.#ends.push(-1);
    this.#emptyInput.push(false);
  }

  /**
   * A line rendered into `data` at [start, end), its newline included: from the batch's template, or
   * (model and url given) a mapper's line serialized on another thread. `id` undefined: `row-<n>`,
   * n the entry's row number (made when first asked for).
   */
  addRendered(
    at: SourcePosition,
    id: string | undefined,
    start: number,
    end: number,
    emptyInput: boolean,
    model = this.template!.model,
    url = this.template!.url,
  ): void {
    this.#add(at);
    this.#rejections.push(undefined);
    this.#ids.push(id);
    this.#models.push(model);
    this.#urls.push(url);
    this.#requests.push(undefined);
    this.#texts.push(undefined);
    this.#starts.push(start);
    this.#ends.push(end);
    this.#emptyInput.push(emptyInput);
  }

  /** A request as an object, with its stored text when it came from a file. */
  addRequest(at: SourcePosition, request: RequestLine, text?: string): void {
    this.#add(at);
    this.#rejections.push(undefined);
    const candidate = request as unknown as {
      custom_id?: unknown;
      url?: unknown;
      body?: { model?: unknown };
    };
    this.#ids.push(typeof candidate?.custom_id === 'string' ? candidate.custom_id : '');
    this.#models.push(String(candidate?.body?.model ?? ''));
    this.#urls.push(typeof candidate?.url === 'string' ? candidate.url : '');
    this.#requests.push(request);
    this.#texts.push(text);
    this.#starts.push(-1);
    this.#ends.push(-1);
    this.#emptyInput.push(false);
  }

  index(i: number): number {
    return this.#indexes[i]!;
  }

  line(i: number): number {
    return this.#lines[i]!;
  }

  file(i: number): string {
    return this.#files[i]!;
  }

  position(i: number): SourcePosition {
    return { index: this.#indexes[i]!, file: this.#files[i]!, line: this.#lines[i]! };
  }

  rejection(i: number): Rejection | undefined {
    return this.#rejections[i];
  }

  /** Turns entry `i` into a rejection. */
  reject(i: number, rejection: Rejection): void {
    this.#rejections[i] = rejection;
  }

  /** The entry's id if it is held as a string; undefined for a `row-<n>` id not yet made (see id). */
  madeId(i: number): string | undefined {
    return this.#ids[i];
  }

  id(i: number): string {
    let id = this.#ids[i];
    if (id === undefined) {
      id = customIdFor(this.#indexes[i]!);
      this.#ids[i] = id;
    }
    return id;
  }

  model(i: number): string {
    return this.#models[i]!;
  }

  url(i: number): string {
    return this.#urls[i]!;
  }

  /** True when entry `i` was rendered from the batch's template (its bytes are in `data`). */
  rendered(i: number): boolean {
    return this.#starts[i]! >= 0;
  }

  emptyInput(i: number): boolean {
    return this.#emptyInput[i]!;
  }

  start(i: number): number {
    return this.#starts[i]!;
  }

  /** End of the line's bytes in `data`, its newline included. */
  end(i: number): number {
    return this.#ends[i]!;
  }

  /** The entry as an object: built, or parsed from its bytes or text (kept for the next ask). */
  request(i: number): RequestLine {
    let request = this.#requests[i];
    if (request === undefined) {
      request = JSON.parse(this.text(i)) as RequestLine;
      this.#requests[i] = request;
    }
    return request;
  }

  /** The stored or rendered text of the entry, if it has one (a built object has none until serialized). */
  storedText(i: number): string | undefined {
    const text = this.#texts[i];
    if (text !== undefined) return text;
    const start = this.#starts[i]!;
    if (start < 0) return undefined;
    let end = this.#ends[i]!;
    if (this.data![end - 1] === LF) end--;
    return this.data!.toString('utf8', start, end);
  }

  /** The entry's line as text (serializing a built object once). */
  text(i: number): string {
    let text = this.storedText(i);
    if (text === undefined) {
      text = JSON.stringify(this.#requests[i]);
      this.#texts[i] = text;
    }
    return text;
  }

  /** Records the entry's serialized text (validation serializes once, for every later stage). */
  setText(i: number, text: string): void {
    this.#texts[i] = text;
  }

  /** The object as built, if it was (a stage may hand on the object rather than re-read its text). */
  builtRequest(i: number): RequestLine | undefined {
    return this.#requests[i];
  }

  /**
   * Entry `i` as one stream item. A rendered line comes as an object without its text, so a user's
   * stage that changes it has the change serialized downstream; a stored text (a file's line) stays.
   */
  item(i: number): RequestItem | Rejection {
    const rejection = this.#rejections[i];
    if (rejection) return rejection;
    const item: RequestItem = {
      kind: 'request',
      index: this.#indexes[i]!,
      file: this.#files[i]!,
      line: this.#lines[i]!,
      request: this.request(i),
    };
    const text = this.#texts[i];
    if (text !== undefined) {
      item.text = text;
      item.bytes = Buffer.byteLength(text);
    }
    return item;
  }
}

/** True for a RequestBatch. */
export function isRequestBatch(value: unknown): value is RequestBatch {
  return (value as RequestBatch | null)?.kind === 'request-batch';
}
