import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * The custom_id of a request or result line. Lines batchpipe wrote start with it, so most are read
 * without parsing the whole line; anything else is parsed.
 */
export function customIdOf(line: string): string | undefined {
  if (line.startsWith('{"custom_id":"')) {
    const end = line.indexOf('"', 14);
    const id = line.slice(14, end);
    if (end !== -1 && !id.includes('\\')) return id;
  }
  try {
    const value = JSON.parse(line) as { custom_id?: unknown };
    return typeof value?.custom_id === 'string' ? value.custom_id : undefined;
  } catch {
    return undefined;
  }
}

/** Every non-empty line of a JSONL file, streamed. */
export async function* jsonlLines(path: string): AsyncGenerator<string> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) if (line.trim() !== '') yield line;
}
