/**
 * batchpipe/runs: what a run directory holds, for tools that read runs (status pages, audits): the
 * manifest, every request's final result line, and the names of the files a run writes.
 */

export type { RunCounts, RunEvent, RunState } from './batch-run.js';
export type { BatchStatus, JobRecord, JobState, RunManifest } from './manifest.js';
export { MANIFEST_FILE, readManifest } from './manifest.js';
export { RESULTS_FILE, RUNS_DIR } from './run-dir.js';
export type { ResultLine } from './run-results.js';
export { runResults } from './run-results.js';
export type { PreparedSummary, ShardSummary } from './sharder.js';
export { REJECTIONS_FILE, ROW_HASHES_FILE, SUMMARY_FILE } from './sharder.js';
