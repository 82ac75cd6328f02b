import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BatchpipeError } from '../../errors.js';
import type { Mapper } from './request-options.js';

/** The file URL of a mapper module given as a path (from the working directory) or a URL. */
export function mapperModuleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  return module.startsWith('file:') ? module : pathToFileURL(resolve(module)).href;
}

/**
 * Loads a mapper module (a file URL, as mapperModuleUrl makes; errors name it as `file`): its
 * default export, or its export named `mapper`. TypeScript files load through tsx, so a mapper can be written in the same language
 * as the scripts that use batchpipe.
 */
export async function loadMapper(url: string, file = fileURLToPath(url)): Promise<Mapper> {
  let module: Record<string, unknown>;
  try {
    if (/\.[cm]?tsx?$/.test(url)) {
      const { tsImport } = await import('tsx/esm/api');
      module = (await tsImport(url, import.meta.url)) as Record<string, unknown>;
    } else {
      module = (await import(url)) as Record<string, unknown>;
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ENOENT') {
      throw new BatchpipeError('BP_USAGE', `mapper module not found: ${file}`, {}, { cause: error });
    }
    throw new BatchpipeError(
      'BP_MAPPER_FAILED',
      `cannot load mapper ${file}: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
  // A .ts file outside an ESM package loads as CommonJS: its exports arrive under `default`.
  const inner =
    module.default !== null && typeof module.default === 'object'
      ? (module.default as Record<string, unknown>)
      : undefined;
  const candidate = [module.default, module.mapper, inner?.default, inner?.mapper].find(
    (f) => typeof f === 'function',
  );
  if (typeof candidate !== 'function') {
    throw new BatchpipeError('BP_USAGE', `${file} must export a function as default or as "mapper"`);
  }
  return candidate as Mapper;
}
