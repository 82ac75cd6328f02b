import cliProgress from 'cli-progress';
import type { RunEvent } from '../run/batch-run.js';
import { count, plural } from './output.js';

/**
 * How a command shows its progress on stderr (`--progress`): `bars` live bars on a terminal, `lines`
 * one plain line per state change, `json` one JSON object a line (JSON Lines) and nothing else, `none`
 * nothing; `auto` is `bars` when stderr is a terminal, else `lines`.
 */
export const PROGRESS_MODES = ['auto', 'bars', 'lines', 'json', 'none'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/** Where a command's events and its human lines (notes, warnings) go while it runs. */
export interface Progress {
  readonly mode: Exclude<ProgressMode, 'auto'>;
  event(event: RunEvent): void;
  /** A human line (a note, a warning) beside the progress: above the bars, or as a JSON event. */
  log(line: string): void;
  /** Ends the display (bars stay on screen at their last values); idempotent. */
  stop(): void;
}

export interface ProgressSettings {
  mode: ProgressMode | undefined;
  /** `--quiet`: errors only. */
  quiet: boolean;
  /** `--json`: the outcome goes to stdout as JSON; human lines are left out unless asked for. */
  json: boolean;
}

type Stream = NodeJS.WriteStream;

/** The display `settings` ask for, on `stream` (stderr). */
export function openProgress(settings: ProgressSettings, stream: Stream = process.stderr): Progress {
  const mode = resolveMode(settings, stream);
  switch (mode) {
    case 'bars':
      return new Bars(stream);
    case 'json':
      return new JsonEvents(stream);
    case 'lines':
      return new Lines(stream, { events: true, logs: true, warnings: true });
    case 'none':
      // Option warnings still show unless --quiet: a changed option never passes silently. The
      // command's own lines show unless --quiet or --json (which prints the outcome on stdout).
      return new Lines(stream, {
        events: false,
        logs: !settings.quiet && !settings.json,
        warnings: !settings.quiet,
      });
  }
}

function resolveMode(settings: ProgressSettings, stream: Stream): Exclude<ProgressMode, 'auto'> {
  if (settings.quiet) return 'none';
  const mode = settings.mode ?? 'auto';
  if (mode !== 'auto') return mode;
  if (settings.json) return 'none';
  return stream.isTTY === true && process.env.TERM !== 'dumb' ? 'bars' : 'lines';
}

/** One plain line per state change, for logs and pipes. */
class Lines implements Progress {
  readonly mode: 'lines' | 'none';
  readonly #stream: Stream;
  readonly #show: { events: boolean; logs: boolean; warnings: boolean };
  /** Per batch: the status and the tenth of its requests last shown. */
  readonly #shown = new Map<string, string>();

  constructor(stream: Stream, show: { events: boolean; logs: boolean; warnings: boolean }) {
    this.mode = show.events ? 'lines' : 'none';
    this.#stream = stream;
    this.#show = show;
  }

  event(event: RunEvent): void {
    if (event.type === 'option') {
      if (this.#show.warnings) this.#stream.write(`${eventLine(event)}\n`);
      return;
    }
    // Rows are counted in the command's own summary line.
    if (!this.#show.events || event.type === 'rows') return;
    if (event.type === 'status') {
      // A poll that found the same status, or counts moved less than a tenth, is not a state change.
      const done = event.completed + event.failed;
      const tenth = event.total > 0 ? Math.floor((10 * done) / event.total) : 0;
      const key = `${event.status} ${tenth}`;
      if (this.#shown.get(event.job) === key) return;
      this.#shown.set(event.job, key);
    }
    this.#stream.write(`${eventLine(event)}\n`);
  }

  log(line: string): void {
    if (this.#show.logs) this.#stream.write(`${line}\n`);
  }

  stop(): void {}
}

/** JSON Lines on stderr: each event as an object with its `type` and `time`; human lines as `log` events. */
class JsonEvents implements Progress {
  readonly mode = 'json';
  readonly #stream: Stream;

  constructor(stream: Stream) {
    this.#stream = stream;
  }

  event(event: RunEvent): void {
    this.#write({ ...event });
  }

  log(line: string): void {
    this.#write({ type: 'log', message: line });
  }

  #write(event: Record<string, unknown>): void {
    this.#stream.write(`${JSON.stringify({ ...event, time: new Date().toISOString() })}\n`);
  }

  stop(): void {}
}

const BAR = {
  barCompleteChar: '\u2588',
  barIncompleteChar: '\u2591',
  barsize: 24,
  hideCursor: true,
  // Redraws a few times a second at most, whatever the events: the bars cost no time on the rows' path.
  fps: 5,
  etaBuffer: 20,
  autopadding: true,
  formatValue: (v: number, _o: unknown, type: string) =>
    type === 'value' || type === 'total' ? count(v) : `${v}`,
  formatTime: eta,
} satisfies cliProgress.Options;

/** Live bars: rows prepared, shards uploaded, requests done per batch (with ETA), rows joined. */
class Bars implements Progress {
  readonly mode = 'bars';
  readonly #multi: cliProgress.MultiBar;
  readonly #bars = new Map<string, cliProgress.SingleBar>();
  #stopped = false;

  constructor(stream: Stream) {
    this.#multi = new cliProgress.MultiBar({ ...BAR, stream, noTTYOutput: stream.isTTY !== true });
    // A second Ctrl-C exits at once, past stop(): the terminal gets its cursor back all the same.
    process.once('exit', () => {
      if (!this.#stopped) stream.write('\x1b[?25h\n');
    });
  }

  event(event: RunEvent): void {
    if (this.#stopped) return;
    switch (event.type) {
      case 'rows':
        if (event.stage === 'prepare') this.#counter('prepare', 'rows prepared', event.rows);
        else this.#bar('join', 'rows joined', event.rows, event.total ?? event.rows);
        return;
      case 'uploaded':
        this.#bar('upload', 'shards uploaded', event.uploaded, event.jobs);
        return;
      case 'status':
        this.#bar(
          `batch ${event.job}`,
          `${event.job} ${event.status}`,
          event.completed + event.failed,
          event.total,
        );
        return;
      case 'finished': {
        const bar = this.#bars.get(`batch ${event.job}`);
        bar?.update(bar.getTotal(), { label: label(`${event.job} ${event.status}`) });
        return;
      }
      case 'created':
        // The batch's bar appears with its first status.
        return;
      default:
        this.log(eventLine(event));
    }
  }

  /** A bar with a total (and so an ETA). */
  #bar(key: string, text: string, value: number, total: number): void {
    let bar = this.#bars.get(key);
    if (!bar) {
      const format = '{label} |{bar}| {value}/{total} {percentage}% ETA {eta_formatted}';
      bar = this.#multi.create(total, 0, { label: label(text) }, { format });
      this.#bars.set(key, bar);
    }
    if (bar.getTotal() !== total) bar.setTotal(total);
    bar.update(value, { label: label(text) });
  }

  /** A count without a total (rows are counted as they are read): the count and its rate. */
  #counter(key: string, text: string, value: number): void {
    let bar = this.#bars.get(key);
    if (!bar) {
      const format = '{label} {value} {rate}';
      bar = this.#multi.create(0, 0, { label: label(text), rate: '' }, { format });
      this.#bars.set(key, bar);
      this.#started.set(key, Date.now());
    }
    const seconds = (Date.now() - this.#started.get(key)!) / 1000;
    const rate = seconds > 0.5 ? `(${count(Math.round(value / seconds))}/s)` : '';
    bar.update(value, { label: label(text), rate });
  }

  readonly #started = new Map<string, number>();

  log(line: string): void {
    if (this.#stopped) process.stderr.write(`${line}\n`);
    else this.#multi.log(`${line}\n`);
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#multi.stop();
  }
}

/** An ETA as `42s`, `7m05s` or `3h20m`; `-` until there is a rate to go by. */
function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Labels padded to one width, so the bars line up (a long job name pushes its own bar only). */
function label(text: string): string {
  return text.padEnd(32);
}

/** The plain line for an event, as `lines` prints it. */
export function eventLine(event: RunEvent): string {
  switch (event.type) {
    case 'uploaded':
      return `uploaded ${event.job} as ${event.file_id}`;
    case 'created':
      return `created ${event.batch_id} for ${event.job}`;
    case 'status':
      return `${event.batch_id} (${event.job}): ${event.status}, ${event.completed + event.failed}/${event.total} done, ${event.failed} failed`;
    case 'finished':
      return `${event.job}: ${event.status}: ${event.ok} ok, ${event.failed} failed, ${event.expired} expired, ${event.cancelled} cancelled${event.retry > 0 ? `, ${event.retry} to retry` : ''}`;
    case 'retry':
      return `${event.job}: sending ${event.requests} requests again`;
    case 'adopted':
      return `adopted ${plural(event.batches, 'batch', 'batches')}${event.uploads > 0 ? ` and ${plural(event.uploads, 'upload')}` : ''} that an earlier run of the same work made at the provider (${event.run}, found by name): ${event.toSend === 0 ? 'nothing' : `${count(event.toSend)} of ${plural(event.jobs, 'shard')}`} to send (--new-run submits afresh)`;
    case 'stuck':
      return `${event.batch_id} (${event.job}) is still ${event.status} well past its completion window`;
    case 'option':
      return event.applied
        ? `warning: --${flagName(event.option, event.value)} holds for this run from now on (it began with --${flagName(event.option, event.was)})`
        : `warning: --${flagName(event.option, event.value)} is ignored: the run keeps --${flagName(event.option, event.was)}, the value its batches were created with (a new value is a new run)`;
    case 'note':
      return event.message;
    case 'rows':
      return `${event.stage === 'prepare' ? 'prepared' : 'joined'} ${count(event.rows)}${event.total === undefined ? '' : ` of ${count(event.total)}`} rows`;
  }
}

/** `maxAttempts` 5 -> `max-attempts 5`; booleans as the flag that sets them (`no-resubmit-expired`). */
function flagName(option: string, value: string): string {
  const flag = option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  if (value === 'true') return flag;
  if (value === 'false') return `no-${flag}`;
  return `${flag} ${value}`;
}
