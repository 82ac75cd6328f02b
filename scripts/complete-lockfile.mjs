// After `npm install`: adds lock entries for platform packages the registry mirror here does not serve, so npm ci
// accepts the lock (it never installs them on this platform).
import { readFileSync, writeFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const platform = (name) => {
  const os = name.includes('win32')
    ? 'win32'
    : name.includes('darwin')
      ? 'darwin'
      : name.includes('android')
        ? 'android'
        : 'linux';
  const cpu = name.includes('arm64') ? 'arm64' : 'x64';
  const libc = os === 'linux' ? (name.includes('musl') ? 'musl' : 'glibc') : undefined;
  return { os, cpu, libc };
};
const add = (parent) => {
  const pkg = JSON.parse(readFileSync(`node_modules/${parent}/package.json`, 'utf8'));
  for (const [name, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (lock.packages[key]) continue;
    const { os, cpu, libc } = platform(name);
    lock.packages[key] = {
      version,
      cpu: [cpu],
      dev: true,
      ...(libc && { libc: [libc] }),
      optional: true,
      os: [os],
    };
  }
};
add('@biomejs/biome');
add('@duckdb/node-bindings');
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))),
);
writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
