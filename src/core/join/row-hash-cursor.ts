import { readChunks } from '../../internal/input.js';
import { LineSplitter, type TextLine } from '../../internal/line-splitter.js';

/**
 * The lines of row-hashes files (each file's header skipped), read in order beside the join's key
 * pass: a source in the order it was prepared meets each row's entry next, so it is compared there
 * and then, with no lookup. `take` advances only on a match; where the rows stop lining up
 * (reordered, inserted, deleted), the rest of the entries are left for `rest` (looked up by id).
 */
export class RowHashCursor {
  readonly #files: readonly string[];
  #file = -1;
  #chunks: AsyncGenerator<Buffer> | undefined;
  #splitter: LineSplitter | undefined;
  #lines: TextLine[] = [];
  #next = 0;
  #done = false;

  constructor(files: readonly string[]) {
    this.#files = files;
  }

  /**
   * The verdict for a row whose custom_id, as JSON, is `id` and whose hash is `hash`: `=` (its entry
   * is next and equal), `!` (next and different), or undefined (not next: the caller looks it up
   * later). A promise when more lines must be read first.
   */
  take(id: string, hash: string): '=' | '!' | undefined | Promise<'=' | '!' | undefined> {
    if (this.#next >= this.#lines.length && !this.#done) return this.#fill().then(() => this.take(id, hash));
    const line = this.#lines[this.#next];
    if (line === undefined) return undefined;
    const text = line.text;
    const tab = text.length - ROW_HASH_CHARS - 1;
    if (
      text.charCodeAt(tab) !== TAB ||
      text.length - ROW_HASH_CHARS - 1 !== id.length ||
      !text.startsWith(id)
    )
      return undefined;
    this.#next++;
    return text.endsWith(hash) ? '=' : '!';
  }

  /** Every entry not taken, in order (`"id"\t<hash>`). */
  async *rest(): AsyncGenerator<TextLine> {
    for (;;) {
      while (this.#next < this.#lines.length) yield this.#lines[this.#next++]!;
      if (this.#done) return;
      await this.#fill();
    }
  }

  async #fill(): Promise<void> {
    this.#lines = [];
    this.#next = 0;
    while (this.#lines.length === 0 && !this.#done) {
      if (!this.#chunks) {
        if (++this.#file >= this.#files.length) {
          this.#done = true;
          return;
        }
        const file = this.#files[this.#file]!;
        this.#chunks = readChunks(file, file);
        this.#splitter = new LineSplitter(file, Number.MAX_SAFE_INTEGER);
      }
      const chunk = await this.#chunks.next();
      const lines = chunk.done
        ? this.#splitter!.split(Buffer.alloc(0), true)
        : this.#splitter!.split(chunk.value, false);
      if (chunk.done) this.#chunks = undefined;
      // Line 1 is the header (the columns); blank lines hold nothing.
      this.#lines = lines.filter((l) => l.line !== 1 && l.text !== '');
    }
  }

  /** Stops reading. */
  async close(): Promise<void> {
    await this.#chunks?.return(undefined);
  }
}

const TAB = 0x09;
/** Characters of a stored row hash (rowHashText). */
const ROW_HASH_CHARS = 9;
