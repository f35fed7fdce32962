/**
 * A V8 code cache for the CLI bundle, so a command does not compile the same ~2.4 MB of JavaScript at
 * every start (~80 ms of CPU of a no-change backup's ~0.7 s). Node ≥ 22.1 has this built in
 * (module.enableCompileCache), and is handed the job; on Node 20 the CommonJS loader's compile step is
 * replaced, for the bundle's own files only, by a vm.Script fed with the cached data.
 *
 * Rules it keeps:
 * - a cache is only ever used for the exact source it was made from: its file name holds the
 *   source's CRC-32 and length, the Node version and the architecture, and V8 itself refuses data
 *   from another V8 or other flags (then the file is compiled as usual and the cache rewritten);
 * - the cache is written once, when the process exits (so it holds the functions the run compiled
 *   lazily), to a temporary file renamed into place: a concurrent run never reads half a file;
 * - it can only cost a compile: any failure to read or write it is ignored.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { constants, Script } from 'node:vm';
import { crc32 } from 'node:zlib';
// Not the package root: that would load all of core before the cache is in place.
import { resolveCacheDir } from '@mailark/core/cache-dir';

interface CjsModule {
  exports: unknown;
  _compile(content: string, filename: string): unknown;
}

/** The CommonJS loader (node:module's default export), with the parts used here. */
const Module = createRequire(import.meta.url)('node:module') as {
  prototype: CjsModule;
  wrap(script: string): string;
  createRequire(filename: string): NodeJS.Require;
  /** Node ≥ 22.1. */
  enableCompileCache?: (dir: string) => unknown;
};

/** Where the code cache lives: `compile-cache/` in mailark's cache directory (see resolveCacheDir). */
export function compileCacheDir(env: Record<string, string | undefined>): string | undefined {
  const base = resolveCacheDir({ env });
  return base === undefined ? undefined : path.join(base, 'compile-cache');
}

/** The cache as enabled: what it served, and its two actions. */
export interface CompileCache {
  /** Bundle files compiled from a cache. */
  readonly hits: string[];
  /** Bundle files compiled from source (no cache, or V8 refused it); write() stores their caches. */
  readonly misses: string[];
  /** Writes the caches of the misses (run at process exit, so they hold what the run compiled). */
  write(): void;
  /** Puts the loader's own compile step back (tests). */
  disable(): void;
}

/**
 * Compiles CommonJS files under `root` (the bundle's directory) with a code cache kept in `cacheDir`.
 * Nothing is hooked when cacheDir is undefined, or when Node has its own cache. Call once, before the
 * bundle is required.
 */
export function enableCompileCache(root: string, cacheDir: string | undefined): CompileCache {
  const hits: string[] = [];
  const misses: string[] = [];
  const none: CompileCache = { hits, misses, write: () => {}, disable: () => {} };
  if (cacheDir === undefined) return none;
  if (typeof Module.enableCompileCache === 'function') {
    Module.enableCompileCache(cacheDir);
    return none;
  }
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  const proto = Module.prototype;
  const compile = proto._compile;
  const pending: Array<{ script: Script; file: string }> = [];
  proto._compile = function (this: CjsModule, content: string, filename: string) {
    if (!filename.startsWith(prefix) || !filename.endsWith('.cjs'))
      return compile.call(this, content, filename);
    const file = path.join(cacheDir, cacheName(content, filename));
    let cachedData: Buffer | undefined;
    try {
      cachedData = readFileSync(file);
    } catch {
      // No cache yet.
    }
    const script = new Script(Module.wrap(content), {
      filename,
      ...(cachedData === undefined ? {} : { cachedData }),
      // import() inside the bundle (the AWS SDK loads node:http so) goes to Node's own loader.
      importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    });
    if (cachedData !== undefined && !script.cachedDataRejected) hits.push(filename);
    else {
      misses.push(filename);
      pending.push({ script, file });
    }
    const wrapper = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    const require = Module.createRequire(filename);
    return wrapper.call(this.exports, this.exports, require, this, filename, path.dirname(filename));
  };
  const write = () => writeCaches(prefix, cacheDir, pending.splice(0));
  process.once('exit', write);
  return {
    hits,
    misses,
    write,
    disable: () => {
      proto._compile = compile;
      process.removeListener('exit', write);
    },
  };
}

/** `<file name>.<crc32>.<length>.<node version>.<arch>.v8`: a different source never matches. */
function cacheName(content: string, filename: string): string {
  const sum = crc32(content).toString(16).padStart(8, '0');
  return `${path.basename(filename)}.${sum}.${content.length}.${process.version}.${process.arch}.v8`;
}

function writeCaches(
  root: string,
  cacheDir: string,
  pending: ReadonlyArray<{ script: Script; file: string }>,
): void {
  if (pending.length === 0) return;
  try {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    for (const { script, file } of pending) {
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
      renameSync(tmp, file);
    }
    removeStale(root, cacheDir, new Set(pending.map((p) => path.basename(p.file))));
  } catch {
    // A cache that cannot be written costs the next run a compile, nothing more.
  }
}

/**
 * A miss means a new build (or Node): drop the caches it made useless, those of a file name the
 * bundle no longer has (chunk names carry content hashes) and older versions of the files just
 * written. Caches of this build that this run did not load stay.
 */
function removeStale(root: string, cacheDir: string, written: ReadonlySet<string>): void {
  const bundled = new Set<string>();
  for (const dir of [root, path.join(root, 'chunks')]) {
    for (const name of readdirSync(dir)) bundled.add(name);
  }
  const writtenFiles = new Set([...written].map(sourceOf));
  for (const name of readdirSync(cacheDir)) {
    if (!name.endsWith('.v8') || written.has(name)) continue;
    const source = sourceOf(name);
    if (!bundled.has(source) || writtenFiles.has(source)) rmSync(path.join(cacheDir, name), { force: true });
  }
}

/** The bundle file a cache name is for (its name up to `.cjs`). */
function sourceOf(cacheName: string): string {
  return cacheName.slice(0, cacheName.indexOf('.cjs.') + '.cjs'.length);
}
