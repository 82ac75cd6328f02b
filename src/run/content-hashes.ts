import { join } from 'node:path';
import { KeySet } from '../core/requests/key-set.js';
import { keyHex, requestKey } from '../core/requests/request-key.js';
import { BufferedFile } from '../internal/buffered-file.js';
import { customIdOf, jsonlBuffers } from './request-ids.js';
import type { ShardSummary } from './sharder.js';

/** Per shard: the file of request content hashes, and how many distinct requests it holds. */
export interface ContentHashes {
  shard: string;
  file: string;
  requests: number;
  distinct: number;
  /**
   * Requests of this shard identical to one sent before it in the run (in this or an earlier shard):
   * what deduplication (`--dedup`) would have sent once. Counted while the run-wide key table has room.
   */
  repeats?: number;
}

/**
 * Writes, beside each shard, `<shard>.hashes.tsv`: one line per request, its custom_id (as JSON) and
 * the hash of its content without the id. Identical requests (the same prompt in several rows) show
 * up as equal hashes: what a later run needs to send them once and reuse the answer.
 */
export async function writeContentHashes(runDir: string, shards: ShardSummary[]): Promise<ContentHashes[]> {
  const out: ContentHashes[] = [];
  const seen = new KeySet();
  for (const shard of shards) {
    let repeats = 0;
    const file = shard.file.replace(/\.jsonl$/, '.hashes.tsv');
    const writer = new BufferedFile(join(runDir, file));
    const distinct = new Set<string>();
    let requests = 0;
    try {
      for await (const line of jsonlBuffers(join(runDir, shard.file))) {
        const id = customIdOf(line);
        if (id === undefined) continue;
        const key = requestKey(line);
        const hash = keyHex(key);
        if (seen.add(key) === 'present') repeats++;
        distinct.add(hash);
        requests++;
        const text = `${JSON.stringify(id)}\t${hash}\n`;
        const pending = writer.append(text, Buffer.byteLength(text));
        if (pending) await pending;
      }
      await writer.close();
    } catch (error) {
      await writer.discard();
      throw error;
    }
    out.push({ shard: shard.file, file, requests, distinct: distinct.size, repeats });
  }
  return out;
}
