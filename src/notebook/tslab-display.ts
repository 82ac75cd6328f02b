import { createRequire } from 'node:module';

/** What batchpipe uses of tslab's display API (`tslab.display`). */
export interface NotebookDisplay {
  html(html: string): void;
}

const JUPYTER_MODULE = /[\\/]tslab[\\/]dist[\\/]jupyter\.js$/;

/**
 * The display of the tslab kernel this process runs in, or undefined outside one. A `require('tslab')`
 * from batchpipe would load another copy, whose display is not connected to the kernel; the kernel's
 * own copy is found in the CommonJS module cache, and its public module loaded beside it shares the
 * connection.
 */
export function notebookDisplay(): NotebookDisplay | undefined {
  const require = createRequire(import.meta.url);
  const jupyter = Object.keys(require.cache).find((path) => JUPYTER_MODULE.test(path));
  if (jupyter === undefined) return undefined;
  const tslab = createRequire(jupyter)('./public.js') as { display?: NotebookDisplay };
  return typeof tslab.display?.html === 'function' ? tslab.display : undefined;
}
