import { workerData } from 'node:worker_threads';
import { ByteWriter } from '../../internal/byte-writer.js';
import { writeJson } from '../../internal/json-writer.js';
import { RecordedWarnings, type WarningCall } from '../../internal/warnings.js';
import { serveJobs } from '../../internal/worker-pool.js';
import type { SourcePosition } from '../../types.js';
import { loadMapper } from './mapper-module.js';
import type { Mapped, MapperPlan } from './mapper-pool.js';
import type { RenderJob } from './render-pool.js';
import { RequestBuilder } from './request-builder.js';
import { type Refused, RequestRules } from './request-rules.js';
import { rowBatchOf } from './thread-rows.js';

// A mapper thread of MapperPool: builds, checks and serializes the request of each row it is sent.
const plan = workerData as MapperPlan;
const builderLog = new RecordedWarnings();
const builder = RequestBuilder.onThread(plan.builder, await loadMapper(plan.module), builderLog);
const ruleLog = new RecordedWarnings();
// Only the rules a line breaks alone are asked here: the run-level ones (ids, one model) are the caller's.
const rules = new RequestRules(
  plan.profile,
  { singleModel: false, checkContext: false, warnThinkingDefault: false },
  ruleLog,
);

serveJobs(async ({ rows, buffer }: RenderJob): Promise<Mapped> => {
  const batch = rowBatchOf(rows);
  const given = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.length);
  const writer = new ByteWriter(0, undefined, given);
  const n = batch.length;
  const ids: string[] = new Array<string>(n).fill('');
  const models = new Map<string, number>();
  const out: Mapped = {
    ids: '',
    idEnds: new Int32Array(n),
    models: [],
    modelAt: new Int32Array(n).fill(-1),
    starts: new Int32Array(n).fill(-1),
    ends: new Int32Array(n).fill(-1),
    rejections: [],
    refusals: [],
    builderWarnings: [],
    ruleWarnings: [],
    buffer: undefined,
  };
  const known = new Set(rows.rejected);
  for (let i = 0; i < n; i++) {
    if (known.has(i)) continue;
    const item = batch.item(i);
    if (item.kind === 'rejection') {
      out.rejections.push([i, item]);
      continue;
    }
    const pending = builder.build(item);
    const built = pending instanceof Promise ? await pending : pending;
    drain(builderLog, i, out.builderWarnings);
    if (built.kind === 'rejection') {
      out.rejections.push([i, built]);
      continue;
    }
    const at: SourcePosition = { index: item.index, file: item.file, line: item.line };
    const refused: Refused | undefined = rules.checkStatic(built.request, at);
    drain(ruleLog, i, out.ruleWarnings);
    if (refused) out.refusals.push([i, refused]);
    ids[i] = built.request.custom_id;
    const model = String((built.request.body as { model?: unknown }).model ?? '');
    let modelIndex = models.get(model);
    if (modelIndex === undefined) {
      modelIndex = models.size;
      models.set(model, modelIndex);
    }
    out.modelAt[i] = modelIndex;
    out.starts[i] = writer.pos;
    writeJson(writer, built.request);
    writer.ensure(1)[writer.pos++] = 0x0a;
    out.ends[i] = writer.pos;
  }
  let end = 0;
  for (let i = 0; i < n; i++) out.idEnds[i] = end += ids[i]!.length;
  out.ids = ids.join('');
  out.models = [...models.keys()];
  // Shared memory comes back as a new object: say whether it is the buffer given.
  if (writer.buffer !== given) out.buffer = writer.buffer;
  return out;
});

function drain(log: RecordedWarnings, i: number, into: Array<[number, WarningCall]>): void {
  if (log.calls.length === 0) return;
  for (const call of log.calls) into.push([i, call]);
  log.calls = [];
}
