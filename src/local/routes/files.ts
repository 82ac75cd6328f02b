import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { badRequest, notFound } from '../api-error.js';
import type { FileObject } from '../files-store.js';
import { ourTurn } from '../http.js';
import { isFileId } from '../ids.js';
import { checkStorage } from '../quotas.js';
import type { Route, RouteContext } from '../state.js';
import { receiveUpload } from '../upload.js';
import { intParam } from './query.js';

/** OpenAI's bounds for `GET /files?limit=`. */
const FILES_LIMIT = { min: 1, max: 10_000, default: 10_000 };

function fileOr404(ctx: RouteContext): FileObject {
  const id = ctx.params[0]!;
  const file = isFileId(id) ? ctx.state.files.get(id) : undefined;
  if (!file) throw notFound(`No such File object: ${id}`, 'id');
  return file;
}

export const fileRoutes: Route[] = [
  {
    name: 'files.create',
    method: 'POST',
    pattern: /^\/v1\/files$/,
    async handler({ req, state }) {
      const upload = await receiveUpload(req, state.tmpDir, state.rules.maxUploadBytes);
      const purpose = upload.fields.purpose;
      try {
        if (purpose === undefined) throw badRequest("Missing required parameter: 'purpose'.", 'purpose');
        // DashScope's batch files take purpose "batch" only; other purposes belong to other APIs.
        if (purpose !== 'batch')
          throw badRequest(
            `purpose must be "batch" on this service, got ${JSON.stringify(purpose)}`,
            'purpose',
          );
        checkStorage(state.quotas.limits, state.files.usage(), upload.bytes);
      } catch (error) {
        await unlink(upload.tmpPath).catch(() => {});
        throw error;
      }
      const release = state.files.reserve(upload.bytes);
      const now = state.clock.now();
      let file: FileObject;
      try {
        file = await state.files.addUpload(upload.tmpPath, upload, now);
      } finally {
        release();
      }
      await state.records.append({
        at: now,
        op: 'file.create',
        id: file.id,
        filename: file.filename,
        bytes: file.bytes,
        sha256: upload.sha256,
      });
      return file;
    },
  },
  {
    name: 'files.list',
    method: 'GET',
    pattern: /^\/v1\/files$/,
    async handler({ state, query }) {
      const order = query.get('order') ?? 'desc';
      if (order !== 'asc' && order !== 'desc')
        throw badRequest(`order must be "asc" or "desc", got ${JSON.stringify(order)}`, 'order');
      const limit = intParam(query, 'limit', FILES_LIMIT);
      const { data, hasMore } = state.files.list({
        purpose: query.get('purpose') ?? undefined,
        after: query.get('after') ?? undefined,
        limit,
        order,
      });
      return {
        object: 'list',
        data,
        first_id: data[0]?.id ?? null,
        last_id: data[data.length - 1]?.id ?? null,
        has_more: hasMore,
      };
    },
  },
  {
    name: 'files.retrieve',
    method: 'GET',
    pattern: /^\/v1\/files\/([^/]+)$/,
    async handler(ctx) {
      return fileOr404(ctx);
    },
  },
  {
    name: 'files.delete',
    method: 'DELETE',
    pattern: /^\/v1\/files\/([^/]+)$/,
    async handler(ctx) {
      const file = fileOr404(ctx);
      const { state } = ctx;
      if (state.scheduler.isReading(file.id))
        throw badRequest(
          `file ${file.id} is the input of a batch that has not finished; cancel the batch or wait for it`,
          'file_id',
          'file_in_use',
        );
      await state.files.delete(file.id);
      await state.records.append({ at: state.clock.now(), op: 'file.delete', id: file.id });
      return { id: file.id, object: 'file', deleted: true };
    },
  },
  {
    name: 'files.content',
    method: 'GET',
    pattern: /^\/v1\/files\/([^/]+)\/content$/,
    async handler(ctx) {
      const file = fileOr404(ctx);
      const { res, state } = ctx;
      // A lost reply of a download: the headers promise every byte, half of them come, the connection drops.
      const cut = ctx.fault?.kind === 'lose';
      const stream = createReadStream(
        state.files.contentPath(file.id),
        cut ? { end: Math.max(0, Math.floor(file.bytes / 2) - 1) } : {},
      );
      await new Promise<void>((resolve, reject) => {
        stream.once('open', () => resolve());
        stream.once('error', reject);
      }).catch(() => {
        throw notFound(`No such File object: ${file.id}`, 'id');
      });
      if (ctx.fault?.kind === 'stall') {
        ourTurn(ctx.req);
        await state.scheduler.calls.pause(ctx.fault.delayMs);
        ctx.req.socket.setTimeout(state.config.limits.idleTimeoutMs);
      }
      if (res.destroyed) {
        stream.destroy();
        return undefined;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': file.bytes });
      if (cut) {
        await new Promise<void>((done) => {
          stream.once('end', done);
          res.once('close', done);
          stream.pipe(res, { end: false });
        });
        // Flush what was sent, then drop the connection.
        res.write('', () => res.destroy());
        return undefined;
      }
      await pipeline(stream, res).catch(() => {
        // The client went away mid-download; nothing to answer.
      });
      return undefined;
    },
  },
];
