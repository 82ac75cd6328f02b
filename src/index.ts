/**
 * batchpipe: composable Node.js streams for batch LLM inference over tables.
 * What a pipeline or a notebook uses: the stages, the jobs behind the commands, the local service, the
 * errors, and the records that flow. Run-directory internals are in `batchpipe/runs`, provider tables
 * in `batchpipe/providers`; nothing under internal/ is part of the API.
 */

// The result cache (docs/cache.md): what runs share so a request is paid for once.
export type { DedupMode, ReuseSummary } from './cache/request-reuse.js';
export type { CacheStats, PruneResult } from './cache/result-cache.js';
export { cacheStats, pruneCache } from './cache/result-cache.js';
export type { Settled } from './cache/settle-reuse.js';
export { customIdFor, MAX_CUSTOM_ID_BYTES, MAX_CUSTOM_ID_CHARS } from './core/requests/custom-id.js';
export type { ExtraColumn } from './core/results/result-cells.js';
export { EXTRA_COLUMNS } from './core/results/result-cells.js';
export type {
  AnswerSchema,
  ResultProblemHandler,
  ResultProblems,
  ResultRecord,
  ResultStatus,
} from './core/results/result-parser.js';
export { RESULT_STATUSES } from './core/results/result-parser.js';
export type { CostRange, Estimate, ShardEstimate } from './cost/estimate.js';
export type { BillingRule, PriceEntry, PriceTable } from './cost/prices.js';
export { parsePriceTable, readPriceTable, shippedPrices } from './cost/prices.js';
export type { TokenRange } from './cost/request-tokens.js';
export type { UsageTotals } from './cost/usage.js';
export { usageOfFiles } from './cost/usage.js';
// Errors and warnings.
export type { ErrorCode, ErrorContext } from './errors.js';
export { BatchpipeError, ERROR_CODES, isBatchpipeError } from './errors.js';
// Evaluation: scores of an answer column against a gold column.
export type { Interval, Intervals } from './eval/bootstrap.js';
export type { Agreement, EvaluateOptions, EvaluationReport } from './eval/evaluate.js';
export { evaluate } from './eval/evaluate.js';
export type { LabelScores, Scores } from './eval/metrics.js';
export { evaluationPage } from './eval/report-html.js';
export type {
  CostOptions,
  EstimateTableOptions,
  EstimateTableResult,
  RunUsage,
} from './jobs/estimate-table.js';
export { estimateTable } from './jobs/estimate-table.js';
export type { JoinTableOptions, JoinTableResult } from './jobs/join-table.js';
export { joinTable } from './jobs/join-table.js';
// Jobs: what the commands call, each a composition of the stages above.
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
export type { Showable, ShowOptions } from './notebook/show.js';
export { show, showable } from './notebook/show.js';
// Where requests go: a provider, or the local service.
export type { Connection, ConnectionOptions } from './providers/connection.js';
export { resolveConnection } from './providers/connection.js';
export type { Endpoint, ProviderName } from './providers/profile.js';
export type { RunCounts, RunEvent, RunState } from './run/batch-run.js';
export type { RunOptions } from './run/start-run.js';
// Sinks.
export type { ArrowSinkOptions } from './sinks/arrow-sink.js';
export { arrowSink } from './sinks/arrow-sink.js';
export type { BatchSinkOptions, BatchSinkStream } from './sinks/batch-sink.js';
export { batchSink } from './sinks/batch-sink.js';
export type { ChatSinkOptions, ChatSinkStream } from './sinks/chat-sink.js';
export { chatSink } from './sinks/chat-sink.js';
export type { CsvSinkOptions, SinkSummary, TableSinkStream } from './sinks/csv-sink.js';
export { csvSink } from './sinks/csv-sink.js';
export { jsonlSink } from './sinks/jsonl-sink.js';
export type { ParquetSinkOptions } from './sinks/parquet-sink.js';
export { parquetSink } from './sinks/parquet-sink.js';
export type {
  PreparedSummary,
  ShardRequestsOptions,
  ShardRequestsStream,
  ShardSummary,
} from './sinks/shard-requests.js';
export { shardRequests } from './sinks/shard-requests.js';
// Sources.
export type { ArrowSourceOptions } from './sources/arrow-source.js';
export { arrowSource } from './sources/arrow-source.js';
export type { CsvSourceOptions } from './sources/csv-source.js';
export { csvSource } from './sources/csv-source.js';
export type { JsonlSourceOptions, JsonlSourceStream } from './sources/jsonl-source.js';
export { jsonlSource } from './sources/jsonl-source.js';
export type { ParquetSourceOptions } from './sources/parquet-source.js';
export { parquetSource } from './sources/parquet-source.js';
export type { RequestSourceStream } from './sources/request-source.js';
export { requestSource } from './sources/request-source.js';
export type { ResultSourceOptions, ResultSourceStream } from './sources/result-source.js';
export { resultSource } from './sources/result-source.js';
export type {
  JoinedRow,
  JoinResultsOptions,
  JoinResultsStream,
  JoinSource,
  JoinSummary,
  ResultColumns,
} from './transforms/join-results.js';
export { joinResults } from './transforms/join-results.js';
export type { RowMapper } from './transforms/map-rows.js';
export { mapRows } from './transforms/map-rows.js';
export type { ParseResultsOptions, ParseResultsStream } from './transforms/parse-results.js';
export { parseResults } from './transforms/parse-results.js';
export { type Slice, type SliceRowsOptions, sliceOfId, sliceRows } from './transforms/slice-rows.js';
// Transforms.
export type { Mapper, MapperBody, ToRequestsOptions, ToRequestsStream } from './transforms/to-requests.js';
export { toRequests } from './transforms/to-requests.js';
export type { ValidateRequestsOptions, ValidateRequestsStream } from './transforms/validate-requests.js';
export { validateRequests } from './transforms/validate-requests.js';
// The records that flow between stages.
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
  Warning,
  WarningCode,
  WarningHandler,
} from './types.js';
