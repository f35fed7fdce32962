/**
 * Start-up cost guard: the built CLI must not load the heavy third-party packages (AWS SDK, imapflow,
 * libmime, archive libraries) unless the command at hand uses them. Each costs 100-800 ms of CPU to
 * load, and @mailark/core's barrel evaluates every module, so one top-level import of one of them
 * anywhere in core makes every command slower (measured: find 1.3 -> 0.5 s CPU once they were lazy).
 * A module that needs one loads it where it is used (a cached `await import()`, or `createRequire`).
 *
 * How: a preload records every module the process loads (ESM load hook and the CommonJS loader). The
 * CLI runs as a bundle (packages/cli/scripts/bundle.mjs): a loaded bundle file holds the packages its
 * module-path comments name ("// node_modules/imapflow/..."), so a heavy package shows either way.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './harness/fixtures.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const BIN = join(ROOT, 'packages/cli/bin/mailark.js');
/** Packages only some commands need (path segments under node_modules). */
const HEAVY = [
  '@aws-sdk',
  '@smithy',
  'imapflow',
  'libmime',
  'mailparser',
  'archiver',
  'tar-stream',
  'yauzl',
  'iconv-lite',
];

let dir: string;
let preload: string;

beforeAll(() => {
  if (!existsSync(join(ROOT, 'packages/cli/dist/main.js'))) {
    throw new Error('the CLI is not built: run "npm run build" (npm run test:integration does it first)');
  }
  dir = tempDir('startup-');
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.LOADED_FILE, url + '\\n');
  return next(url, context);
}
`,
  );
  preload = join(dir, 'preload.mjs');
  writeFileSync(
    preload,
    `import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';
register(${JSON.stringify(pathToFileURL(hooks).href)});
const load = Module._load;
Module._load = function (request, parent, isMain) {
  appendFileSync(process.env.LOADED_FILE, Module._resolveFilename(request, parent, isMain) + '\\n');
  return load.apply(this, arguments);
};
`,
  );
  writeFileSync(join(dir, 'pw'), 'startup imports test password\n', { mode: 0o600 });
});

/** Runs the built CLI; returns its exit code and the heavy packages it loaded. */
function run(name: string, args: string[]): { code: number | null; stderr: string; heavy: string[] } {
  const loadedFile = join(dir, `${name}.loaded`);
  writeFileSync(loadedFile, '');
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(preload).href, BIN, ...args], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      LOADED_FILE: loadedFile,
      MAILARK_PASSWORD_FILE: join(dir, 'pw'),
      MAILARK_TEST_KDF: 'fast',
    },
  });
  const loaded = readFileSync(loadedFile, 'utf8')
    .split('\n')
    .filter((f) => f !== '')
    .flatMap(modulesIn);
  expect(loaded.some((f) => f.includes('/packages/core/dist/'))).toBe(true);
  const heavy = HEAVY.filter((p) => loaded.some((f) => f.includes(`/node_modules/${p}/`)));
  return { code: r.status, stderr: r.stderr, heavy };
}

/** The module paths a loaded file stands for: itself, and for a bundle file the modules it holds. */
function modulesIn(loaded: string): string[] {
  const path = loaded.startsWith('file:') ? fileURLToPath(loaded) : loaded;
  if (!path.startsWith(join(ROOT, 'packages/cli/dist/'))) return [path];
  const bundled = [...readFileSync(path, 'utf8').matchAll(/^\/\/ ((?:node_modules|packages)\/\S+)$/gm)];
  return [path, ...bundled.map((m) => `/${m[1]}`)];
}

describe('CLI start-up', () => {
  it('--version, init, find and check on a local repository load none of the heavy packages', () => {
    const repo = join(dir, 'repo');
    const version = run('version', ['--version']);
    expect([version.code, version.heavy]).toEqual([0, []]);
    const init = run('init', ['init', '-r', repo]);
    expect(init.code, init.stderr).toBe(0);
    expect(init.heavy).toEqual([]);
    // No snapshot yet: find opens the repository, then says so (NOT_FOUND, exit 1).
    const find = run('find', ['find', '-r', repo, '--message-id', 'x@example.com']);
    expect([find.code, find.heavy]).toEqual([1, []]);
    const check = run('check', ['check', '-r', repo]);
    expect(check.code, check.stderr).toBe(0);
    expect(check.heavy).toEqual([]);
  });

  it('the guard sees a heavy package when one is loaded', () => {
    // An S3 location makes the store send a request, so the SDK loads (the endpoint refuses: exit 1).
    const s3 = run('s3', ['check', '-r', 's3://bucket/x', '--s3-endpoint', 'http://127.0.0.1:9']);
    expect(s3.code).not.toBe(0);
    expect(s3.heavy).toContain('@aws-sdk');
  });
});
