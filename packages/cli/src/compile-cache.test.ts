import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type CompileCache, compileCacheDir, enableCompileCache } from './compile-cache.js';

const dirs: string[] = [];
let cache: CompileCache | undefined;

afterEach(() => {
  cache?.disable();
  cache = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'mailark-compile-cache-'));
  dirs.push(d);
  return d;
}

/** A bundle directory with one CommonJS file exporting `value`, and a fresh require for it. */
function bundle(root: string, name: string, value: string): () => unknown {
  mkdirSync(path.join(root, 'chunks'), { recursive: true });
  const file = path.join(root, name);
  writeFileSync(file, `exports.value = ${JSON.stringify(value)};\n`);
  return () => {
    const require = createRequire(file);
    delete require.cache[file];
    return (require(file) as { value: string }).value;
  };
}

describe('compile cache', () => {
  it('compiles from source and writes the cache, then loads from it, same exports', () => {
    const root = tempDir();
    const dir = path.join(tempDir(), 'compile-cache');
    const load = bundle(root, 'mailark.cjs', 'first');
    cache = enableCompileCache(root, dir);
    expect(load()).toBe('first');
    expect([cache.hits, cache.misses.map((f) => path.basename(f))]).toEqual([[], ['mailark.cjs']]);
    cache.write();
    expect(readdirSync(dir)).toEqual([expect.stringMatching(/^mailark\.cjs\.[0-9a-f]{8}\.\d+\.v\d.*\.v8$/)]);
    cache.disable();

    cache = enableCompileCache(root, dir);
    expect(load()).toBe('first');
    expect([cache.hits.map((f) => path.basename(f)), cache.misses]).toEqual([['mailark.cjs'], []]);
  });

  it('never serves a cache to a different source of the same length; drops the stale cache', () => {
    const root = tempDir();
    const dir = path.join(tempDir(), 'compile-cache');
    const load = bundle(root, 'mailark.cjs', 'aaaa');
    cache = enableCompileCache(root, dir);
    load();
    cache.write();
    cache.disable();
    const before = readdirSync(dir);

    const again = bundle(root, 'mailark.cjs', 'bbbb'); // rebuilt: same length, other code
    cache = enableCompileCache(root, dir);
    expect(again()).toBe('bbbb');
    expect(cache.misses.map((f) => path.basename(f))).toEqual(['mailark.cjs']);
    cache.write();
    const after = readdirSync(dir);
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
  });

  it('leaves files outside the bundle to the loader, and does nothing without a directory', () => {
    const root = tempDir();
    const elsewhere = tempDir();
    const dir = path.join(tempDir(), 'compile-cache');
    const load = bundle(elsewhere, 'other.cjs', 'x');
    cache = enableCompileCache(root, dir);
    expect(load()).toBe('x');
    expect([cache.hits, cache.misses]).toEqual([[], []]);
    cache.disable();
    cache = enableCompileCache(root, undefined);
    expect(bundle(root, 'mailark.cjs', 'y')()).toBe('y');
    expect(cache.misses).toEqual([]);
  });

  it('lives in compile-cache/ of the mailark cache directory', () => {
    expect(compileCacheDir({ MAILARK_CACHE_DIR: '/var/cache/m' })).toBe('/var/cache/m/compile-cache');
    expect(compileCacheDir({ HOME: '/home/a' })).toBe('/home/a/.cache/mailark/compile-cache');
    expect(compileCacheDir({})).toBeUndefined();
  });
});
