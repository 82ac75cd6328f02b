import type { WarningCall } from '../../internal/warnings.js';
import { WorkerPool } from '../../internal/worker-pool.js';
import type { ProviderProfile } from '../../providers/profile.js';
import type { Rejection } from '../../types.js';
import { type RenderJob, type RowsTransport, THREAD_LIMITS } from './render-pool.js';
import type { BuilderState } from './request-builder.js';
import type { Refused } from './request-rules.js';

/** What a mapper thread is started with. */
export interface MapperPlan {
  /** The mapper module's file URL. */
  module: string;
  builder: BuilderState;
  /** The profile whose rules each line is checked against there (the ones a line breaks alone). */
  profile: ProviderProfile;
}

/**
 * What a mapper thread made of a batch: a line per request, in the buffer it was sent. Ids and models
 * cross as one string and a few (cloning a string per row cost the thread 6% of its time).
 */
export interface Mapped {
  /** Every entry's custom_id, one after another ("" where the row was rejected): see `idEnds`. */
  ids: string;
  /** Per entry: where its custom_id ends in `ids` (it starts where the previous one ends). */
  idEnds: Int32Array;
  /** The models the bodies name, each once. */
  models: string[];
  /** Per entry: its body's model, as an index into `models` (-1 where the row was rejected). */
  modelAt: Int32Array;
  /** Per entry: the line's bytes, its newline included; -1 where no line was made. */
  starts: Int32Array;
  ends: Int32Array;
  /** Rows rejected there (the mapper failed, or a JSON line did not parse), by entry. */
  rejections: Array<[number, Rejection]>;
  /** Lines that break a rule of the profile alone, by entry (still written: validation decides). */
  refusals: Array<[number, Refused]>;
  /** Warnings building the requests raised, by entry, in order. */
  builderWarnings: Array<[number, WarningCall]>;
  /** Warnings checking the lines raised, by entry, in order. */
  ruleWarnings: Array<[number, WarningCall]>;
  /** A larger buffer the lines went into when they did not fit the one given (undefined: they did). */
  buffer: Uint8Array | undefined;
}

/**
 * Threads that each load a mapper module and turn batches of rows into serialized request lines
 * (mapper-worker): each row's values decoded from the shared bytes, the mapper called, the line
 * checked against the rules it can break alone and serialized into shared memory, while this thread
 * reads, checks the rest and writes. A module's mapper can cross to a thread; a function cannot.
 */
export class MapperPool {
  readonly #pool: WorkerPool<RenderJob, Mapped>;

  constructor(plan: MapperPlan, threads: number) {
    this.#pool = new WorkerPool(
      import.meta.url,
      'mapper-worker',
      threads,
      { workerData: plan, resourceLimits: THREAD_LIMITS },
      'a mapper',
    );
  }

  get size(): number {
    return this.#pool.size;
  }

  /** Maps a batch into `buffer` (shared memory). */
  map(rows: RowsTransport, buffer: Buffer): Promise<Mapped> {
    return this.#pool.run({ rows, buffer });
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
