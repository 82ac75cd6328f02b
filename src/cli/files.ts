import { stat } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { BatchpipeError } from '../errors.js';
import type { BatchApi, FileObject } from '../run/batch-api.js';
import { addConnectionOptions, type OpenConnection, openConnection } from './connection-options.js';
import { count, info, plural, printJson } from './output.js';
import { type CommonFlags, connectionFor, output, withOutputOptions } from './run-target.js';

interface SelectFlags extends CommonFlags {
  run?: string;
  olderThan?: number;
  yes?: boolean;
}

/** Batches still running: their input files must stay. */
const UNFINISHED = ['validating', 'in_progress', 'finalizing', 'cancelling'];

/** `7d`, `12h`, `30m` -> seconds. */
function age(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$/i.exec(value);
  if (!match) throw new InvalidArgumentError(`expected an age like 7d, 12h or 30m, got "${value}"`);
  const unit = { d: 86_400, h: 3_600, m: 60 }[match[2]!.toLowerCase() as 'd' | 'h' | 'm'];
  return Number(match[1]) * unit;
}

function selectOptions(command: Command): Command {
  return command
    .option(
      '--run <run>',
      "a run's files: a run directory (its manifest's files) or a run id (its uploads' names)",
    )
    .option('--older-than <age>', 'files created longer ago than this: 7d, 12h, 30m', age);
}

export function filesCommand(): Command {
  const files = new Command('files').description(
    "the account's stored files at the provider: list them, delete some, prune a run's or old ones (dry run unless --yes)",
  );
  const list = selectOptions(
    new Command('list').description('stored files, with totals against the documented storage'),
  );
  addConnectionOptions(list);
  withOutputOptions(list).action((flags: SelectFlags) =>
    withApi(flags, async (api, connection) => {
      const out = output(flags);
      const { selected, total } = await select(api, flags);
      const storage = connection.connection.profile.storage;
      if (out.json)
        return printJson({ files: selected, account: total, ...(storage && { limits: storage }) });
      for (const f of selected) info(out, fileLine(f));
      info(
        out,
        `${plural(selected.length, 'file')}, ${gbOf(sum(selected))} listed; the account holds ${plural(total.files, 'file')}, ${gbOf(total.bytes)}${storage ? ` of ${count(storage.maxFiles)} files and ${gbOf(storage.maxBytes)}` : ''}`,
      );
    }),
  );
  const del = new Command('delete')
    .description('delete these files (a dry run unless --yes)')
    .argument('<file-ids...>', 'file ids')
    .option('--yes', 'delete them (without it, only say what would be deleted)');
  addConnectionOptions(del);
  withOutputOptions(del).action((ids: string[], flags: SelectFlags) =>
    withApi(flags, async (api) => {
      const out = output(flags);
      await remove(
        api,
        out,
        ids.map((id) => ({ id, filename: '', bytes: 0, purpose: '', created_at: 0 })),
        flags.yes === true,
      );
    }),
  );
  const prune = selectOptions(
    new Command('prune').description(
      "delete a run's files or old files, never the input of a batch still running nor the outputs of a run not yet downloaded (a dry run unless --yes)",
    ),
  ).option('--yes', 'delete them (without it, only say what would be deleted)');
  addConnectionOptions(prune);
  withOutputOptions(prune).action((flags: SelectFlags) =>
    withApi(flags, async (api) => {
      if (flags.run === undefined && flags.olderThan === undefined)
        throw new BatchpipeError(
          'BP_USAGE',
          'files prune: say which files: --run <run> and/or --older-than <age>',
          {
            option: 'run',
          },
        );
      const out = output(flags);
      const { selected, kept } = await select(api, flags, true);
      for (const k of kept) info(out, `keeping ${k.file.id} (${k.file.filename}): ${k.why}`);
      await remove(api, out, selected, flags.yes === true);
    }),
  );
  // Each subcommand ends with an exception, as every command does, so main() sets the exit code (2 for usage).
  for (const sub of [list, del, prune])
    files.addCommand(sub.showHelpAfterError('(run with --help for usage)').exitOverride());
  return files;
}

async function withApi(
  flags: SelectFlags,
  work: (api: BatchApi, connection: OpenConnection) => Promise<void>,
) {
  const { BatchApi } = await import('../run/batch-api.js');
  const connection =
    flags.run !== undefined && (await isDir(flags.run))
      ? await connectionFor(flags.run, flags)
      : await openConnection(flags);
  try {
    await work(new BatchApi(connection.connection), connection);
  } finally {
    await connection.close();
  }
}

async function isDir(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/**
 * The files `--run` and `--older-than` pick (all when neither is given), the account's totals, and for
 * a prune what must stay: the input of a batch still running, the files of a run's jobs not yet done.
 */
async function select(
  api: BatchApi,
  flags: SelectFlags,
  pruning = false,
): Promise<{
  selected: FileObject[];
  kept: Array<{ file: FileObject; why: string }>;
  total: { files: number; bytes: number };
}> {
  const run = flags.run === undefined ? undefined : await runFiles(flags.run);
  const cutoff = flags.olderThan === undefined ? undefined : api.providerNow() - flags.olderThan;
  const protectedIds = pruning ? await runningInputs(api) : new Map<string, string>();
  for (const [id, why] of run?.unfinished ?? []) protectedIds.set(id, why);
  const selected: FileObject[] = [];
  const kept: Array<{ file: FileObject; why: string }> = [];
  const total = { files: 0, bytes: 0 };
  for await (const file of api.files()) {
    total.files++;
    total.bytes += typeof file.bytes === 'number' ? file.bytes : 0;
    if (
      run &&
      !run.ids.has(file.id) &&
      !(typeof file.filename === 'string' && file.filename.startsWith(run.prefix))
    )
      continue;
    if (cutoff !== undefined && !(typeof file.created_at === 'number' && file.created_at < cutoff)) continue;
    const why = protectedIds.get(file.id);
    if (why) kept.push({ file, why });
    else selected.push(file);
  }
  return { selected, kept, total };
}

/** A run's files: the ids its manifest names, the names its uploads have, and those of jobs not done. */
async function runFiles(
  run: string,
): Promise<{ ids: Set<string>; prefix: string; unfinished: Map<string, string> }> {
  const { hasManifest } = await import('../run/run-dir.js');
  if (!(await hasManifest(run))) {
    if (!/^run-[\w-]+$/.test(run))
      throw new BatchpipeError(
        'BP_RUN_NOT_FOUND',
        `--run ${run}: no run directory there, and not a run id (run-...)`,
        {
          option: 'run',
        },
      );
    return { ids: new Set(), prefix: `${run}-`, unfinished: new Map() };
  }
  const { readManifest } = await import('../run/manifest.js');
  const manifest = await readManifest(run);
  const ids = new Set<string>();
  const unfinished = new Map<string, string>();
  for (const job of manifest.jobs) {
    for (const id of [job.input_file_id, job.output_file_id, job.error_file_id]) {
      if (!id) continue;
      ids.add(id);
      if (job.state !== 'done')
        unfinished.set(id, `${job.id} of ${manifest.run_id} is ${job.state}: resume it first`);
    }
  }
  return { ids, prefix: `${manifest.run_id}-`, unfinished };
}

/** Input files of the account's batches still running, by id, with why they stay. */
async function runningInputs(api: BatchApi): Promise<Map<string, string>> {
  const inputs = new Map<string, string>();
  // The status filter where the provider has it; every provider's answer is checked here either way.
  for await (const batch of api.list({ limit: 100, status: UNFINISHED.join(',') })) {
    if (UNFINISHED.includes(batch.status))
      inputs.set(batch.input_file_id, `the input of ${batch.id}, still ${batch.status}`);
  }
  return inputs;
}

async function remove(
  api: BatchApi,
  out: ReturnType<typeof output>,
  files: FileObject[],
  yes: boolean,
): Promise<void> {
  if (!yes) {
    if (out.json) return printJson({ dry_run: true, files });
    for (const f of files) info(out, `would delete ${fileLine(f)}`);
    info(
      out,
      `dry run: ${plural(files.length, 'file')}${sum(files) > 0 ? `, ${gbOf(sum(files))}` : ''} would be deleted; --yes deletes them`,
    );
    return;
  }
  const deleted: string[] = [];
  for (const f of files) {
    await api.deleteFile(f.id);
    deleted.push(f.id);
    if (!out.json) info(out, `deleted ${f.id}${f.filename ? ` (${f.filename})` : ''}`);
  }
  if (out.json) printJson({ dry_run: false, deleted });
  else info(out, `deleted ${plural(deleted.length, 'file')}`);
}

function fileLine(f: FileObject): string {
  const when =
    typeof f.created_at === 'number' && f.created_at > 0 ? new Date(f.created_at * 1000).toISOString() : '';
  return `${f.id}  ${f.filename}  ${count(f.bytes)} bytes  ${f.purpose}  ${when}`.trimEnd();
}

function sum(files: FileObject[]): number {
  return files.reduce((n, f) => n + (typeof f.bytes === 'number' ? f.bytes : 0), 0);
}

function gbOf(bytes: number): string {
  return `${(bytes / 1e9).toFixed(bytes < 1e9 ? 3 : 1)} GB`;
}
