import type { BatchRun, RunState } from '../run/batch-run.js';
import type { SyncRun } from '../run/sync/sync-run.js';
import { count, info, type Output, printJson } from './output.js';

/** A run's end state and per-request totals, as a person or a script reads it. */
export function reportRun(
  out: Output,
  run: BatchRun,
  state: RunState | 'submitted',
  extra: Record<string, unknown> = {},
): void {
  const counts = run.counts();
  const jobs = run.manifest.jobs.map((j) => ({
    job: j.id,
    batch_id: j.batch_id,
    state: j.state,
    status: j.status,
    requests: j.lines,
    request_counts: j.request_counts,
    outcome: j.outcome,
    note: j.note,
  }));
  if (out.json) {
    printJson({ run_id: run.manifest.run_id, run_dir: run.dir, state, counts, jobs, ...extra });
    return;
  }
  for (const job of jobs) {
    const progress = job.request_counts
      ? ` ${job.request_counts.completed + job.request_counts.failed}/${job.request_counts.total}`
      : '';
    info(
      out,
      `  ${job.job}  ${job.batch_id ?? '-'}  ${job.status ?? job.state}${progress}${job.note ? `  (${job.note})` : ''}`,
    );
  }
  const parts = [
    `${count(counts.ok)} ok`,
    `${count(counts.failed)} failed`,
    `${count(counts.rejected)} rejected`,
    `${count(counts.expired)} expired`,
    `${count(counts.cancelled)} cancelled`,
  ];
  if (counts.pending > 0) parts.push(`${count(counts.pending)} pending`);
  info(
    out,
    `run ${run.manifest.run_id} (${run.dir}): ${state}: ${count(counts.rows)} rows: ${parts.join(', ')}`,
  );
}

/** A sync run that did not finish (detached): its totals so far, and how to go on. */
export function reportSync(out: Output, run: SyncRun, state: RunState): void {
  const counts = run.counts();
  if (out.json) {
    printJson({ run_id: run.record.run_id, run_dir: run.dir, mode: 'sync', state, counts });
    return;
  }
  info(
    out,
    `sync run ${run.record.run_id} (${run.dir}): ${state}: ${count(counts.ok)} ok, ${count(counts.failed)} failed, ${count(counts.pending)} not answered yet: the same command goes on (answered rows are not sent again)`,
  );
}
