import { AppendLog } from './durable.js';

/** One committed call that changed the service's state. */
export interface ServiceRecord {
  /** Order of commitment, from 1. */
  seq: number;
  /** Service time, unix seconds. */
  at: number;
  op: 'file.create' | 'file.delete' | 'batch.create' | 'batch.cancel';
  /** The file or batch the call created or changed. */
  id: string;
  filename?: string;
  bytes?: number;
  sha256?: string;
  input_file_id?: string;
  endpoint?: string;
  ds_name?: string | null;
}

/** Every committed call, with the counts tests assert on ("each shard uploaded and created once"). */
export interface ServiceRecords {
  calls: ServiceRecord[];
  /** Uploads by file name. */
  uploadsByFilename: Record<string, number>;
  /** Uploads by the SHA-256 of their content. */
  uploadsBySha256: Record<string, number>;
  /** Batches created by `metadata.ds_name` (batches without one are not counted here). */
  batchesByDsName: Record<string, number>;
  /** Batches created by input file id. */
  batchesByInputFile: Record<string, number>;
}

/**
 * The service's own account of what it was asked to do: `records.jsonl` in the data dir, one line
 * per committed call, appended (fsynced) after the state it describes is durable and before the
 * reply. It holds names, sizes and hashes, never keys or content.
 */
export class RecordLog {
  readonly #log: AppendLog;
  #seq = 0;

  private constructor(path: string) {
    this.#log = new AppendLog(path);
  }

  static async open(path: string): Promise<RecordLog> {
    const log = new RecordLog(path);
    const calls = (await AppendLog.read(path)) as ServiceRecord[];
    log.#seq = calls.length > 0 ? calls[calls.length - 1]!.seq : 0;
    return log;
  }

  append(record: Omit<ServiceRecord, 'seq'>): Promise<void> {
    return this.#log.append({ seq: ++this.#seq, ...record });
  }

  async read(): Promise<ServiceRecords> {
    const calls = (await AppendLog.read(this.#log.path)) as ServiceRecord[];
    // Null-prototype maps: a file named "__proto__" is counted, not assigned as a prototype.
    const counts = () => Object.create(null) as Record<string, number>;
    const result: ServiceRecords = {
      calls,
      uploadsByFilename: counts(),
      uploadsBySha256: counts(),
      batchesByDsName: counts(),
      batchesByInputFile: counts(),
    };
    const bump = (counts: Record<string, number>, key: string | null | undefined) => {
      if (key !== undefined && key !== null) counts[key] = (counts[key] ?? 0) + 1;
    };
    for (const call of calls) {
      if (call.op === 'file.create') {
        bump(result.uploadsByFilename, call.filename);
        bump(result.uploadsBySha256, call.sha256);
      } else if (call.op === 'batch.create') {
        bump(result.batchesByDsName, call.ds_name);
        bump(result.batchesByInputFile, call.input_file_id);
      }
    }
    return result;
  }

  close(): Promise<void> {
    return this.#log.close();
  }
}
