import { mkdir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonFile, writeFileAtomic } from './durable.js';
import { type FileKind, isFileId, newFileId } from './ids.js';

/** The File object of the OpenAI API (`status` is deprecated there but DashScope shows it). */
export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: 'batch' | 'batch_output';
  status: 'uploaded' | 'processed';
  expires_at: number | null;
}

/** What is stored beside a file: the public object and what the service keeps to itself. */
interface FileMeta {
  file: FileObject;
  seq: number;
  sha256: string | null;
}

export interface ListFilesQuery {
  purpose?: string;
  after?: string;
  limit: number;
  order: 'asc' | 'desc';
}

/**
 * Files in the data dir: `files/<id>.json` (the object, written atomically, the commit point) and
 * `files/<id>.data` (the bytes). Content is moved into place before its object is written, so a
 * crash leaves at worst an orphan content file, removed on the next start.
 */
export class FileStore {
  readonly dir: string;
  readonly #files = new Map<string, FileMeta>();
  #seq = 0;
  #bytes = 0;
  // Uploads checked against the quota and not yet committed, so parallel uploads cannot overshoot it.
  #pendingFiles = 0;
  #pendingBytes = 0;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async open(dir: string): Promise<FileStore> {
    await mkdir(dir, { recursive: true });
    const store = new FileStore(dir);
    const names = await readdir(dir);
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      if (!isFileId(id)) continue;
      const meta = (await readJsonFile(join(dir, name))) as FileMeta;
      store.#files.set(id, meta);
      store.#bytes += meta.file.bytes;
      store.#seq = Math.max(store.#seq, meta.seq);
    }
    for (const name of names) {
      // An upload whose object was never written was never acknowledged: drop it. A result file
      // without its object is a batch caught mid-finalize: the batch adopts it when it resumes.
      if (name.startsWith('file-batch-') && name.endsWith('.data') && !store.#files.has(name.slice(0, -5)))
        await unlink(join(dir, name)).catch(() => {});
      if (name.endsWith('.tmp')) await unlink(join(dir, name)).catch(() => {});
    }
    return store;
  }

  get(id: string): FileObject | undefined {
    return this.#files.get(id)?.file;
  }

  sha256(id: string): string | null {
    return this.#files.get(id)?.sha256 ?? null;
  }

  /** Newest first by default, as the API lists them; `after` is the id the previous page ended with. */
  list(query: ListFilesQuery): { data: FileObject[]; hasMore: boolean } {
    let all = [...this.#files.values()].sort((a, b) => a.seq - b.seq).map((m) => m.file);
    if (query.order === 'desc') all.reverse();
    if (query.purpose) all = all.filter((f) => f.purpose === query.purpose);
    if (query.after) {
      const at = all.findIndex((f) => f.id === query.after);
      all = at === -1 ? [] : all.slice(at + 1);
    }
    return { data: all.slice(0, query.limit), hasMore: all.length > query.limit };
  }

  /** Files stored and their bytes (uploads and result files), as the storage quota counts them. */
  usage(): { files: number; bytes: number } {
    return { files: this.#files.size + this.#pendingFiles, bytes: this.#bytes + this.#pendingBytes };
  }

  /** Counts an upload in `usage()` until the returned release is called (after its commit or refusal). */
  reserve(bytes: number): () => void {
    this.#pendingFiles++;
    this.#pendingBytes += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#pendingFiles--;
      this.#pendingBytes -= bytes;
    };
  }

  /** Latest `created_at` stamped on any file, so the clock never restarts behind it. */
  latestStamp(): number {
    let latest = 0;
    for (const { file } of this.#files.values()) latest = Math.max(latest, file.created_at);
    return latest;
  }

  contentPath(id: string): string {
    if (!isFileId(id)) throw new Error(`not a file id: ${id}`);
    return join(this.dir, `${id}.data`);
  }

  /** Commits an upload: moves the fsynced temp file into place, then writes its object. */
  async addUpload(
    tmpPath: string,
    upload: { filename: string; bytes: number; sha256: string },
    now: number,
  ): Promise<FileObject> {
    const id = newFileId('batch');
    const file: FileObject = {
      id,
      object: 'file',
      bytes: upload.bytes,
      created_at: now,
      filename: upload.filename,
      purpose: 'batch',
      status: 'uploaded',
      expires_at: null,
    };
    try {
      await rename(tmpPath, this.contentPath(id));
      await this.#commit({ file, seq: ++this.#seq, sha256: upload.sha256 });
    } catch (error) {
      // Not committed (its object could not be written: a full disk): no file, and no bytes left over.
      await unlink(tmpPath).catch(() => {});
      await unlink(this.contentPath(id)).catch(() => {});
      throw error;
    }
    return file;
  }

  /**
   * Makes a batch's result file a stored file under an id chosen earlier. Idempotent, so finalizing
   * can be redone after a crash: an id already stored is left alone; content already moved is kept.
   */
  async adoptResult(id: string, kind: FileKind, partPath: string, now: number): Promise<FileObject> {
    const existing = this.#files.get(id);
    if (existing) return existing.file;
    const target = this.contentPath(id);
    try {
      await rename(partPath, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const { size } = await stat(target);
    const file: FileObject = {
      id,
      object: 'file',
      bytes: size,
      created_at: now,
      filename: kind === 'batch_output' ? 'batch_output.jsonl' : 'batch_error.jsonl',
      purpose: 'batch_output',
      status: 'processed',
      expires_at: null,
    };
    await this.#commit({ file, seq: ++this.#seq, sha256: null });
    return file;
  }

  async delete(id: string): Promise<boolean> {
    const meta = this.#files.get(id);
    if (!meta) return false;
    // The object goes first: once it is gone the file does not exist, whatever a crash leaves behind.
    await rm(join(this.dir, `${id}.json`), { force: true });
    this.#files.delete(id);
    this.#bytes -= meta.file.bytes;
    await rm(this.contentPath(id), { force: true });
    return true;
  }

  async #commit(meta: FileMeta): Promise<void> {
    await writeFileAtomic(join(this.dir, `${meta.file.id}.json`), JSON.stringify(meta));
    this.#files.set(meta.file.id, meta);
    this.#bytes += meta.file.bytes;
  }
}
