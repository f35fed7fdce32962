/**
 * The local cache through the CLI (--cache-dir, MAILARK_CACHE_DIR, HOME, --no-cache), in-process on a
 * local repository: a second run reads no index or snapshot bytes from the store, and a cache full of
 * garbage changes no result.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDirStore, type MessageMatch, Repository, saveTestSnapshot, TEST_KDF } from '@mailark/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Env } from '../password.js';
import { type CliRun, run } from '../testing/capture.js';

const PASSWORD = 'the local cache from the command line';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const one = Buffer.from('Subject: first\r\n\r\nbody one\r\n');
const two = Buffer.from('Subject: second\r\n\r\nbody two\r\n');

let dir: string;
let repoDir: string;
let repoId: string;
/** Bytes of every index and snapshot object in the repository: what a warm cache saves. */
let metadataBytes: number;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailark-cli-cache-'));
  repoDir = join(dir, 'repo');
  const repo = await Repository.init(new LocalDirStore(repoDir), PASSWORD, { kdf: TEST_KDF });
  repoId = repo.config.id;
  await saveTestSnapshot(repo, { 'alice@ex': { INBOX: [one, two] } }, '2026-11-20T02:00:00.000Z');
  await saveTestSnapshot(repo, { 'alice@ex': { INBOX: [one] } }, '2026-11-21T02:00:00.000Z');
  await repo.close();
  metadataBytes = 0;
  for (const kind of ['index', 'snapshots']) {
    for (const name of await readdir(join(repoDir, kind)))
      metadataBytes += (await stat(join(repoDir, kind, name))).size;
  }
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface FindDoc {
  matches: MessageMatch[];
  store: { bytesRead: number; gets: number };
}

async function mailark(argv: string[], env: Env = {}): Promise<CliRun> {
  const r = await run(['-r', repoDir, ...argv], { env: { MAILARK_PASSWORD: PASSWORD, ...env } });
  expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  return r;
}

async function find(argv: string[], env: Env = {}): Promise<FindDoc> {
  const r = await mailark(['find', '--all-snapshots', '--json', ...argv], env);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as FindDoc;
}

const summary = (doc: FindDoc) => doc.matches.map((m) => [m.snapshotTime, m.folder, m.uid, m.sha256]);

async function cachedNames(cache: string, kind: string): Promise<string[]> {
  return (await readdir(join(cache, repoId, kind))).sort();
}

describe('the local cache', () => {
  it('--cache-dir: the second run reads no index or snapshot bytes from the store', async () => {
    const cache = join(dir, 'cache');
    const cold = await find(['--cache-dir', cache]);
    const warm = await find(['--cache-dir', cache]);
    expect(summary(warm)).toEqual(summary(cold));
    expect(summary(cold)).toContainEqual(['2026-11-20T02:00:00.000Z', 'INBOX', 2, sha(two)]);
    expect(cold.store.bytesRead - warm.store.bytesRead).toBe(metadataBytes);
    expect(await cachedNames(cache, 'index')).toEqual((await readdir(join(repoDir, 'index'))).sort());
    expect(await cachedNames(cache, 'snapshots')).toEqual((await readdir(join(repoDir, 'snapshots'))).sort());
  });

  it('--no-cache reads everything from the store and writes no cache', async () => {
    const cache = join(dir, 'cache');
    const a = await find(['--no-cache', '--cache-dir', cache]);
    const b = await find(['--no-cache'], { MAILARK_CACHE_DIR: cache, HOME: join(dir, 'home') });
    expect(summary(b)).toEqual(summary(a));
    expect(b.store.bytesRead).toBe(a.store.bytesRead);
    await expect(stat(cache)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(join(dir, 'home'))).rejects.toMatchObject({ code: 'ENOENT' });
    // The same reads as a cold cache: --no-cache changes where bytes come from, not what is read.
    const cold = await find(['--cache-dir', cache]);
    expect(cold.store.bytesRead).toBe(a.store.bytesRead);
  });

  it('defaults to MAILARK_CACHE_DIR, else $XDG_CACHE_HOME/mailark, else ~/.cache/mailark', async () => {
    await find([], { MAILARK_CACHE_DIR: join(dir, 'env-cache'), HOME: join(dir, 'home') });
    expect(await cachedNames(join(dir, 'env-cache'), 'index')).not.toEqual([]);
    await find([], { XDG_CACHE_HOME: join(dir, 'xdg') });
    expect(await cachedNames(join(dir, 'xdg', 'mailark'), 'index')).not.toEqual([]);
    await find([], { HOME: join(dir, 'home') });
    expect(await cachedNames(join(dir, 'home', '.cache', 'mailark'), 'index')).not.toEqual([]);
  });

  it('a cache directory full of garbage still gives correct results, and is repaired', async () => {
    const cache = join(dir, 'cache');
    const expected = await find(['--cache-dir', cache]);
    const root = join(cache, repoId);
    for (const kind of ['index', 'snapshots']) {
      for (const name of await readdir(join(root, kind))) await writeFile(join(root, kind, name), 'garbage');
    }
    const ghost = 'f'.repeat(64); // named like an object the store does not have
    await writeFile(join(root, 'index', ghost), 'no such object');
    await writeFile(join(root, 'snapshots', 'not-an-id'), 'stray file');
    await mkdir(join(root, 'snapshots', 'e'.repeat(64)), { recursive: true });

    const damaged = await find(['--cache-dir', cache]);
    expect(summary(damaged)).toEqual(summary(expected));
    const gone = damaged.matches.find(
      (m) => m.sha256 === sha(two) && m.snapshotTime.startsWith('2026-11-20'),
    );
    const out = join(dir, 'eml');
    const restored = await mailark(['restore', gone?.ref ?? '', '--eml', out, '--cache-dir', cache]);
    expect(restored.code, restored.stderr).toBe(0);
    const files = await readdir(out);
    expect(files).toHaveLength(1);
    expect(sha(await readFile(join(out, files[0] ?? '')))).toBe(sha(two));

    // Repaired: the next run reads none of them from the store again, and the ghost is gone.
    const warm = await find(['--cache-dir', cache]);
    expect(expected.store.bytesRead - warm.store.bytesRead).toBe(metadataBytes);
    expect(await cachedNames(cache, 'index')).not.toContain(ghost);
  });

  it('check judges the store, not the good copies in the cache', async () => {
    const cache = join(dir, 'cache');
    const expected = await find(['--cache-dir', cache]);
    const [name] = await readdir(join(repoDir, 'index'));
    await writeFile(join(repoDir, 'index', name ?? ''), 'damaged in the store');
    const r = await mailark(['check', '--cache-dir', cache]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain(`index/${name}`);
    // Everyday commands still run from the intact copy.
    expect(summary(await find(['--cache-dir', cache]))).toEqual(summary(expected));
  });

  it('an unusable cache directory costs a warning, not a result', async () => {
    const cache = join(dir, 'not-a-directory');
    await writeFile(cache, 'a file');
    const expected = await find(['--no-cache']);
    const r = await mailark(['find', '--all-snapshots', '--json', '--cache-dir', cache]);
    expect(r.code, r.stderr).toBe(0);
    expect(summary(JSON.parse(r.stdout) as FindDoc)).toEqual(summary(expected));
    expect(r.stderr).toContain('is not usable');
  });
});
