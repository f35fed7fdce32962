/**
 * check, repair index and stats in-process on a local temp-dir repository: what a person reads (one
 * verdict, not two), the options that pick how much data check reads, and exit codes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDirStore, Repository, saveTestSnapshot, TEST_KDF } from '@mailark/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliRun, run } from '../testing/capture.js';

const PASSWORD = 'repository commands password';
let dir: string;
let repoDir: string;
const outputs: CliRun[] = [];

async function mailark(argv: string[]): Promise<CliRun> {
  const r = await run(['-r', repoDir, ...argv], { env: { MAILARK_PASSWORD: PASSWORD } });
  outputs.push(r);
  return r;
}

// Incompressible bodies of ~4 KB: each fills a pack of its own.
const body = (s: string) =>
  Buffer.from(`Subject: ${s}\r\n\r\n${s} ${randomBytes(3000).toString('base64')}\r\n`);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailark-repo-cmd-'));
  repoDir = join(dir, 'repo');
  // Small packs: several of them, so a data subset has something to choose from.
  const repo = await Repository.init(new LocalDirStore(repoDir), PASSWORD, { kdf: TEST_KDF, packSize: 4096 });
  await saveTestSnapshot(repo, {
    'alice@ex': { INBOX: [body('one'), body('two'), body('three')] },
    'bob@ex': { INBOX: [body('four')] },
  });
  await repo.close();
});

afterEach(async () => {
  for (const r of outputs.splice(0)) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  await rm(dir, { recursive: true, force: true });
});

/** How often `text` occurs in `s`. */
const occurrences = (s: string, text: string) => s.split(text).length - 1;

describe('commands that need no index', () => {
  it('snapshots, unlock and key list read no index object: a damaged one stops none of them', async () => {
    for (const name of await readdir(join(repoDir, 'index')))
      await writeFile(join(repoDir, 'index', name), 'damaged in the store');
    const snaps = await mailark(['snapshots', '--json', '--no-cache']);
    expect(snaps.code, snaps.stderr).toBe(0);
    expect(JSON.parse(snaps.stdout)).toHaveLength(1);
    const unlock = await mailark(['unlock', '--no-cache']);
    expect(unlock.code, unlock.stderr).toBe(0);
    const keys = await mailark(['key', 'list', '--json', '--no-cache']);
    expect(keys.code, keys.stderr).toBe(0);
    expect(JSON.parse(keys.stdout)).toHaveLength(1);
    // What needs the index still says which object is damaged.
    const stats = await mailark(['stats', '--no-cache']);
    expect(stats.code).not.toBe(0);
    expect(stats.stderr).toContain('index/');
  });
});

describe('mailark check', () => {
  it('states a clean verdict once, on stdout', async () => {
    const r = await mailark(['check', '--read-data']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^checked 1 snapshots, .+; read \d+ packs \(\d+ blobs\)\nno errors were found\n$/,
    );
    expect(occurrences(r.stdout + r.stderr, 'no errors')).toBe(1);
  });

  it('reads the percentage of packs --read-data-subset asks for', async () => {
    const all = JSON.parse((await mailark(['check', '--read-data-subset', '100', '--json'])).stdout);
    expect(all.ok).toBe(true);
    expect(all.counts.packs).toBeGreaterThan(2);
    expect(all.counts.packsRead).toBe(all.counts.packs);
    const some = await mailark(['check', '--read-data-subset=1']);
    expect(some.code, some.stderr).toBe(0);
    expect(some.stdout).toContain('; read 1 packs');
    const none = JSON.parse((await mailark(['check', '--json'])).stdout);
    expect(none.counts.packsRead).toBe(0);
  });

  it('refuses a percentage out of range, and --read-data with --read-data-subset', async () => {
    const zero = await mailark(['check', '--read-data-subset', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('--read-data-subset must be a percentage');
    const both = await mailark(['check', '--read-data', '--read-data-subset', '10']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('mutually exclusive');
  });

  it('names a damaged pack once in the verdict, and exits 1', async () => {
    const sub = (await readdir(join(repoDir, 'data')))[0] as string;
    const pack = (await readdir(join(repoDir, 'data', sub)))[0] as string;
    const file = join(repoDir, 'data', sub, pack);
    const bytes = await readFile(file);
    bytes[10] = (bytes[10] as number) ^ 0x01;
    await writeFile(file, bytes);
    const r = await mailark(['check', '--read-data']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/\n\d+ errors? found:\n {2}.*data\/[0-9a-f]{2}\/[0-9a-f]{64}/);
    expect(r.stdout).toContain(`data/${sub}/${pack}`);
    expect(occurrences(r.stdout + r.stderr, 'found:')).toBe(1);
    expect(occurrences(r.stdout + r.stderr, 'error(s) found')).toBe(0);
    expect(occurrences(r.stdout + r.stderr, 'no errors')).toBe(0);
  });
});

describe('mailark repair index', () => {
  it('rebuilds the index and says so once; everything still checks', async () => {
    const r = await mailark(['repair', 'index']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^indexed \d+ blobs in \d+ packs: wrote 1 index object\(s\), removed 1 old one\(s\)\n$/,
    );
    expect(r.stderr).not.toContain('rebuilt');
    expect((await mailark(['check', '--read-data'])).code).toBe(0);
  });
});

describe('mailark stats', () => {
  it('counts the messages of the snapshots and the bytes their data takes', async () => {
    const r = await mailark(['stats', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.logical).toMatchObject({ snapshots: 1, messages: 4 });
    expect(s.objects.data.count).toBeGreaterThan(2);
    const text = await mailark(['stats']);
    expect(text.stdout).toMatch(/^1 snapshots: 4 messages, /m);
  });
});
