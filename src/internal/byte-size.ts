const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
};

/** Byte sizes written by people: `500MB`, `6 MiB`, `1048576`; undefined when it is not one. */
export function readByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?\s*$/i.exec(text);
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * UNITS[(match[2] ?? '').toLowerCase()]!);
}
