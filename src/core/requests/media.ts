import { open, stat } from 'node:fs/promises';
import { extname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContentPart } from '../../types.js';
import { textOf } from '../rows/row-batch.js';

/**
 * Images and video frames named by table cells, as the chat request's content parts: OpenAI's
 * `{type: "image_url", image_url: {url}}` for an image (ref/openai-openapi-full.yaml: "Either a URL of
 * the image or the base64 encoded image data"), and Qwen-VL's `{type: "video", video: [frame, ...]}`
 * for a video given as its frames (Model Studio's vision guide; ref/ has no page on it). A cell holds
 * one reference or several: a JSON array (a JSONL array value, or CSV text `["a.png", "b.png"]`).
 * A reference is a URL (http, https, oss, data) sent as it is, or a local file (a path, relative to
 * `mediaDir`, or a file: URL) read, size-checked and sent as a base64 data URL.
 */

/** Image types by file extension, as data URLs name them. */
const MIME_BY_EXT: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.heic': 'image/heic',
};
const SENT_AS_IS = /^(?:https?|oss|data):/i;

export interface MediaSettings {
  /** Where relative paths start. */
  dir: string;
  /** Most bytes of one local file (before base64, which adds a third). */
  maxBytes: number;
}

/** Why a cell's media cannot be sent (the row is rejected with it). */
export class MediaProblem extends Error {}

/** The references a cell holds: one, or a JSON array of them. Empty cells hold none. */
export function mediaRefs(value: unknown, column: string): string[] {
  if (value === undefined || value === null) return [];
  let list: unknown = value;
  if (typeof value === 'string') {
    const text = value.trim();
    if (text === '') return [];
    if (text.startsWith('[')) {
      try {
        list = JSON.parse(text);
      } catch {
        throw new MediaProblem(
          `column ${JSON.stringify(column)} starts with "[" but is not a JSON array of references`,
        );
      }
    } else list = [text];
  }
  if (!Array.isArray(list)) list = [textOf(list)];
  const refs: string[] = [];
  for (const item of list as unknown[]) {
    if (typeof item !== 'string' || item.trim() === '')
      throw new MediaProblem(
        `column ${JSON.stringify(column)} holds ${JSON.stringify(item)}, not a URL or file path`,
      );
    refs.push(item.trim());
  }
  return refs;
}

/** A reference as the request sends it: a URL as it is, a local file as a base64 data URL. */
export async function mediaUrl(ref: string, settings: MediaSettings): Promise<string> {
  if (SENT_AS_IS.test(ref)) return ref;
  const path = ref.startsWith('file:')
    ? fileURLToPath(ref)
    : isAbsolute(ref)
      ? ref
      : resolve(settings.dir, ref);
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new MediaProblem(`${ref} is not a file`);
    size = info.size;
  } catch (error) {
    if (error instanceof MediaProblem) throw error;
    throw new MediaProblem(
      `${ref} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  if (size > settings.maxBytes)
    throw new MediaProblem(
      `${ref} is ${size} bytes, at most ${settings.maxBytes} allowed (as base64 it must fit the provider's line limit)`,
    );
  if (size === 0) throw new MediaProblem(`${ref} is empty`);
  // Read at most the checked size: a file growing meanwhile is not read past it.
  const bytes = Buffer.alloc(size);
  const handle = await open(path, 'r');
  try {
    let got = 0;
    while (got < size) {
      const { bytesRead } = await handle.read(bytes, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got < size) throw new MediaProblem(`${ref} shrank while it was read`);
  } finally {
    await handle.close();
  }
  const mime = MIME_BY_EXT[extname(path).toLowerCase()] ?? sniff(bytes);
  if (!mime)
    throw new MediaProblem(
      `${ref} is not an image batchpipe recognises (by extension: ${Object.keys(MIME_BY_EXT).join(', ')}; or PNG, JPEG, GIF, WebP content)`,
    );
  return `data:${mime};base64,${bytes.toString('base64')}`;
}

/** The type of an image by its first bytes, for files without a known extension. */
function sniff(bytes: Buffer): string | undefined {
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47) return 'image/png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.length >= 6 && bytes.subarray(0, 4).toString('latin1') === 'GIF8') return 'image/gif';
  if (
    bytes.length >= 12 &&
    bytes.subarray(0, 4).toString('latin1') === 'RIFF' &&
    bytes.subarray(8, 12).toString('latin1') === 'WEBP'
  )
    return 'image/webp';
  return undefined;
}

/** The content parts of a row's media: each image, then each video (its frames), in column order. */
export async function mediaParts(
  images: ReadonlyArray<{ column: string; value: unknown }>,
  videos: ReadonlyArray<{ column: string; value: unknown }>,
  settings: MediaSettings,
): Promise<ContentPart[]> {
  const parts: ContentPart[] = [];
  for (const { column, value } of images)
    for (const ref of mediaRefs(value, column))
      parts.push({ type: 'image_url', image_url: { url: await mediaUrl(ref, settings) } });
  for (const { column, value } of videos) {
    const frames = mediaRefs(value, column);
    if (frames.length === 0) continue;
    const urls: string[] = [];
    for (const frame of frames) urls.push(await mediaUrl(frame, settings));
    parts.push({ type: 'video', video: urls });
  }
  return parts;
}

/** Content part types that carry an image or video: a model that takes text only cannot serve them. */
export const VISION_PART_TYPES: ReadonlySet<string> = new Set([
  'image_url',
  'video',
  'video_url',
  'input_image',
]);

/** Whether a chat body's messages carry an image or a video. */
export function hasVisionParts(body: Record<string, unknown>): boolean {
  const messages = body.messages;
  if (!Array.isArray(messages)) return false;
  for (const message of messages) {
    const content = (message as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) continue;
    for (const part of content)
      if (VISION_PART_TYPES.has((part as { type?: unknown } | null)?.type as string)) return true;
  }
  return false;
}
