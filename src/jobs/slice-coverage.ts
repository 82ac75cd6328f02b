import { type Slice, sliceText } from '../core/rows/row-slice.js';
import { BatchpipeError } from '../errors.js';
import type { SliceDir } from './result-files.js';

/** Which slices of a table a join was given results for. */
export interface SliceCoverage {
  /** The n of `i/n`. */
  count: number;
  /** Slice indexes given, ascending (each once). */
  given: number[];
  /** Slice indexes not given: their rows have no results and come out `missing`. */
  absent: number[];
  /** Directories given whose run has not finished: rows they have no result for yet come out `missing`. */
  unfinished: SliceDir[];
}

/**
 * What the slices among a join's result directories cover; undefined when none holds a slice.
 * BP_USAGE when they are slices of different counts (`0/4` beside `1/3`): those cannot be parts of one
 * table's split.
 */
export function sliceCoverage(slices: readonly SliceDir[]): SliceCoverage | undefined {
  if (slices.length === 0) return undefined;
  const count = slices[0]!.slice.count;
  const other = slices.find((s) => s.slice.count !== count);
  if (other)
    throw new BatchpipeError(
      'BP_USAGE',
      `--results mixes slices of different splits: ${slices[0]!.dir} is slice ${sliceText(slices[0]!.slice)}, ${other.dir} is slice ${sliceText(other.slice)}; give the run directories of one split (the same n in --slice i/n)`,
    );
  const given = [...new Set(slices.map((s) => s.slice.index))].sort((a, b) => a - b);
  const absent: number[] = [];
  for (let i = 0; i < count; i++) if (!given.includes(i)) absent.push(i);
  return { count, given, absent, unfinished: slices.filter((s) => s.unfinished) };
}

/** `0/4, 2/4` (the first few, then how many more). */
export function sliceList(indexes: readonly number[], count: number, shown = 8): string {
  const named = indexes.slice(0, shown).map((index) => sliceText({ index, count } satisfies Slice));
  return indexes.length > shown ? `${named.join(', ')} and ${indexes.length - shown} more` : named.join(', ');
}
