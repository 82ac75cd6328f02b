import { IdSet, NEW_ID } from './id-set.js';

/** Where a custom_id was first seen; empty when that is not known (positions past 2^32 lines). */
export interface FirstHolder {
  file?: string;
  line?: number;
}

/** More file switches than this are not located (a source that interleaves files row by row). */
const MAX_SEGMENTS = 65_536;
const MAX_TAG = 0xffff_ffff;

/**
 * The custom_ids seen so far, in one file or several read one after another, each with the file and
 * line that first used it, so a duplicate names its first holder without a second pass. Positions
 * ride in the IdSet's 32-bit tags as a running line count (each file's lines follow the previous
 * file's), so memory stays flat: the only per-file state is where its count starts.
 */
export class SeenIds {
  readonly #set = new IdSet();
  readonly #files: string[] = [];
  /** Tags of segment k are in (bases[k], bases[k + 1]]. */
  readonly #bases: number[] = [];
  #file: string | undefined;
  #base = 0;
  #top = 0;

  /** Makes room for about `count` ids at once. */
  reserve(count: number): void {
    this.#set.reserve(count);
  }

  /** Records `id` as used at file:line; answers undefined when it is new, else where it was first used. */
  claim(id: string, file: string, line: number): FirstHolder | undefined {
    if (file !== this.#file && this.#files.length < MAX_SEGMENTS) {
      this.#file = file;
      this.#base = this.#top;
      this.#files.push(file);
      this.#bases.push(this.#base);
    }
    let tag = 0;
    if (file === this.#file && Number.isInteger(line) && line >= 1 && this.#base + line <= MAX_TAG) {
      tag = this.#base + line;
      if (tag > this.#top) this.#top = tag;
    }
    const earlier = this.#set.claim(id, tag);
    if (earlier === NEW_ID) return undefined;
    return this.#locate(earlier);
  }

  /** Lets go of what the set keeps on disk. */
  close(): void {
    this.#set.close();
  }

  #locate(tag: number): FirstHolder {
    if (tag === 0) return {};
    // The last segment whose base is below the tag.
    let low = 0;
    let high = this.#bases.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.#bases[mid]! < tag) low = mid;
      else high = mid - 1;
    }
    return { file: this.#files[low]!, line: tag - this.#bases[low]! };
  }
}
