import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const src = join(new URL('..', import.meta.url).pathname, 'src');
const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Each file of src/ (relative, no extension) and the files it imports. */
const graph = new Map<string, string[]>();
for (const file of sourceFiles(src)) {
  const from = relative(src, file).replace(/\.ts$/, '');
  const targets: string[] = [];
  for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const spec = match[1] ?? match[2]!;
    targets.push(relative(src, normalize(join(dirname(file), spec))).replace(/\.js$/, ''));
  }
  graph.set(from, targets);
}

/** The top-level part of a file: its folder under src/, or the root file itself. */
const partOf = (file: string) => file.split(sep)[0]!;

/** Strongly connected components with more than one member (Tarjan). */
function cycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      for (;;) {
        const w = stack.pop()!;
        on.delete(w);
        component.push(w);
        if (w === v) break;
      }
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

/**
 * Which parts each part may import (DESIGN section 1): layers point down. cli -> jobs -> the stages'
 * faces (sources, transforms, sinks) -> streams, run -> core -> providers -> options, internal ->
 * errors, types. The local service is a server of its own: it never imports the client's layers.
 */
const BELOW_CORE = ['providers', 'options', 'internal', 'errors', 'types'];
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  types: ['errors'],
  internal: ['errors', 'types'],
  options: ['errors', 'internal'],
  providers: ['options', 'internal', 'errors', 'types'],
  core: BELOW_CORE,
  cache: ['core', ...BELOW_CORE],
  run: ['cache', 'core', ...BELOW_CORE],
  streams: ['core', ...BELOW_CORE],
  sources: ['streams', 'core', ...BELOW_CORE],
  transforms: ['streams', 'core', ...BELOW_CORE],
  sinks: ['streams', 'run', 'cache', 'core', ...BELOW_CORE],
  // Estimates and prices: reads request and result files (run/'s line readers), builds nothing.
  cost: ['run', 'core', ...BELOW_CORE],
  jobs: ['cost', 'sources', 'transforms', 'sinks', 'streams', 'run', 'cache', 'core', ...BELOW_CORE],
  local: BELOW_CORE,
  eval: ['jobs', 'sources', 'transforms', 'sinks', 'streams', 'run', 'core', ...BELOW_CORE],
  notebook: ['eval', 'jobs', 'sources', 'transforms', 'sinks', 'streams', 'run', 'core', ...BELOW_CORE],
  cli: ['eval', 'jobs', 'cost', 'local', 'run', 'cache', 'core', ...BELOW_CORE],
};

/**
 * The files a module loads as it starts (imports of values, not `import type` or `import()`), itself
 * included.
 */
function loadedAtStart(entry: string): Set<string> {
  const RUNTIME = /^(?:import|export)\s+(?!type\b)[^'"]*?from\s+['"](\.[^'"]+)['"]/gm;
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const path = join(src, `${file}.ts`);
    for (const match of readFileSync(path, 'utf8').matchAll(RUNTIME))
      visit(relative(src, normalize(join(dirname(path), match[1]!))).replace(/\.js$/, ''));
  };
  visit(entry);
  return seen;
}

describe('the layout of src/', () => {
  it('has no import cycle between files', () => {
    const edges = new Map([...graph].map(([file, targets]) => [file, new Set(targets)]));
    expect(cycles(edges)).toEqual([]);
  });

  it('has no import cycle between its top-level folders and root files', () => {
    const edges = new Map<string, Set<string>>();
    for (const [file, targets] of graph) {
      const from = partOf(file);
      // The root entry imports every part and nothing imports it.
      if (from === 'index') continue;
      for (const target of targets) {
        const to = partOf(target);
        if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
      }
    }
    expect(cycles(edges)).toEqual([]);
  });

  it('has every part import only the layers below it', () => {
    const wrong: string[] = [];
    for (const [file, targets] of graph) {
      const from = partOf(file);
      if (from === 'index') continue;
      const allowed = ALLOWED[from];
      expect(allowed, `${from} has no place in the layers (add it to ALLOWED, on purpose)`).toBeDefined();
      for (const target of targets) {
        const to = partOf(target);
        if (to !== from && !allowed!.includes(to)) wrong.push(`${file} -> ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('keeps zod out of what the render and row-hash threads load as they start (~35 ms of each start)', () => {
    const ZOD = /^(?:import|export)\s+(?!type\b)[^'"]*?from\s+['"]zod['"]/m;
    for (const worker of [
      join('core', 'requests', 'render-worker'),
      join('core', 'requests', 'row-hash-worker'),
    ]) {
      const withZod = [...loadedAtStart(worker)].filter((file) =>
        ZOD.test(readFileSync(join(src, `${file}.ts`), 'utf8')),
      );
      expect(withZod, worker).toEqual([]);
    }
  });

  it('gives the subpath entries only their own folder', () => {
    for (const entry of [join('run', 'index'), join('providers', 'index')]) {
      const folder = partOf(entry);
      const outside = graph.get(entry)!.filter((t) => ![folder, 'types', 'errors'].includes(partOf(t)));
      expect(outside, entry).toEqual([]);
    }
  });
});
