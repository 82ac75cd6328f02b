/**
 * batchpipe: composable Node.js streams for batch LLM inference over tables.
 * Every export is named here; nothing under internal/ is part of the API.
 */

export { customIdFor, MAX_CUSTOM_ID_BYTES } from './core/requests/custom-id.js';
export { reaskRequest } from './core/requests/reask-request.js';
export type { CompiledTemplate } from './core/requests/template.js';
export { compileTemplate } from './core/requests/template.js';
export type { ErrorCode, ErrorContext } from './errors.js';
export { BatchpipeError, ERROR_CODES, isBatchpipeError } from './errors.js';
export type { Warning, WarningCode, WarningHandler } from './internal/warnings.js';
// Results back into tables: parse output and error lines, join them onto the source, write tables.
export type { JoinTableOptions, JoinTableResult } from './jobs/join-table.js';
export { joinTable } from './jobs/join-table.js';
export type { PrepareOptions, PrepareResult } from './jobs/prepare.js';
export { prepare } from './jobs/prepare.js';
export type { ReaskRound, RunTableOptions, RunTableResult } from './jobs/run-table.js';
export { runTable } from './jobs/run-table.js';
export type { FileProblem, FileReport, ValidateFileOptions } from './jobs/validate-file.js';
export { validateRequestFile, validateRequestFiles } from './jobs/validate-file.js';
export type {
  ArmedFault,
  FaultControl,
  FaultEvent,
  FaultKind,
  FaultRule,
  LocalService,
  LocalServiceOptions,
  RestartOptions,
  ServiceRecord,
  ServiceRecords,
} from './local/index.js';
export { startLocalService } from './local/index.js';
export type { Connection, ConnectionOptions } from './providers/connection.js';
export { defaultProvider, resolveConnection } from './providers/connection.js';
export type {
  Endpoint,
  FileLimits,
  ModelInfo,
  ModelKind,
  ProviderName,
  ProviderProfile,
} from './providers/profile.js';
export { ENDPOINTS, PROVIDER_NAMES } from './providers/profile.js';
export { PROFILES } from './providers/profiles.js';
export type { ProfileOptions } from './providers/resolve-profile.js';
export { findModel, resolveProfile, thinksByDefault } from './providers/resolve-profile.js';
// Durable runs: submit, await, download, resume.
export type { RunCounts, RunEvent, RunState } from './run/batch-run.js';
export type { BatchStatus, JobRecord, JobState, RunManifest } from './run/manifest.js';
export { readManifest } from './run/manifest.js';
export type { ResultLine } from './run/run-results.js';
export { runResults } from './run/run-results.js';
export type { RunOptions } from './run/start-run.js';
export type { BatchSinkOptions, BatchSinkStream } from './sinks/batch-sink.js';
export { batchSink } from './sinks/batch-sink.js';
export type { CsvSinkOptions, SinkSummary, TableSinkStream } from './sinks/csv-sink.js';
export { csvSink } from './sinks/csv-sink.js';
export { jsonlSink } from './sinks/jsonl-sink.js';
export type {
  PreparedSummary,
  ShardRequestsOptions,
  ShardRequestsStream,
  ShardSummary,
} from './sinks/shard-requests.js';
export { REJECTIONS_FILE, SUMMARY_FILE, shardRequests } from './sinks/shard-requests.js';
export type { CsvSourceOptions } from './sources/csv-source.js';
export { csvSource } from './sources/csv-source.js';
export type { JsonlSourceOptions, JsonlSourceStream } from './sources/jsonl-source.js';
export { jsonlSource } from './sources/jsonl-source.js';
export type { RequestSourceStream } from './sources/request-source.js';
export { requestSource } from './sources/request-source.js';
export type {
  ExtraColumn,
  JoinResultsOptions,
  JoinResultsStream,
  JoinSource,
  JoinSummary,
} from './transforms/join-results.js';
export { EXTRA_COLUMNS, joinResults } from './transforms/join-results.js';
export type {
  AnswerSchema,
  ParseResultsOptions,
  ParseResultsStream,
  ResultProblemHandler,
  ResultProblems,
  ResultRecord,
  ResultSourceOptions,
  ResultSourceStream,
  ResultStatus,
} from './transforms/parse-results.js';
export { parseResults, RESULT_STATUSES, resultSource } from './transforms/parse-results.js';
export type { Mapper, MapperBody, ToRequestsOptions, ToRequestsStream } from './transforms/to-requests.js';
export { toRequests } from './transforms/to-requests.js';
export type { ValidateRequestsOptions, ValidateRequestsStream } from './transforms/validate-requests.js';
export { validateRequests } from './transforms/validate-requests.js';
export type {
  ChatBody,
  ChatMessage,
  ContentPart,
  EmbeddingBody,
  Rejection,
  RequestBody,
  RequestItem,
  RequestLine,
  RequestStreamItem,
  Row,
  RowValues,
  SourceItem,
  SourcePosition,
} from './types.js';
