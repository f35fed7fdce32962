/**
 * `mailark forget` and `mailark prune` end to end, in-process, on a local temp-dir repository:
 * policy options, --dry-run, --json, --prune, LOCKED while another process holds a lock.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LocalDirStore,
  Repository,
  readMessageBytes,
  saveTestSnapshot,
  TEST_KDF,
  walkMessages,
} from '@mailark/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../testing/capture.js';
import { printPrune } from './prune.js';

const PASSWORD = 'correct horse battery staple';
let dir: string;
let repoDir: string;
let env: Record<string, string>;
let ids: string[];

const mailark = (argv: string[]) => run(['-r', repoDir, ...argv], { env });
/** Stores a test opened, closed after it (their open-file cache holds pack handles). */
let stores: LocalDirStore[] = [];
function openStore(): LocalDirStore {
  const s = new LocalDirStore(repoDir);
  stores.push(s);
  return s;
}

function message(n: number): Uint8Array {
  return Buffer.from(`Subject: m${n}\r\n\r\n${randomBytes(3000).toString('base64')}`);
}

async function dataBytes(): Promise<number> {
  let n = 0;
  for await (const o of openStore().list('data/')) n += o.size;
  return n;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailark-forget-'));
  repoDir = join(dir, 'repo');
  await writeFile(join(dir, 'pw'), `${PASSWORD}\n`);
  env = { MAILARK_PASSWORD_FILE: join(dir, 'pw'), MAILARK_TEST_KDF: 'fast', TZ: 'UTC' };
  const repo = await Repository.init(openStore(), PASSWORD, {
    kdf: TEST_KDF,
    packSize: 16 * 1024,
  });
  ids = [];
  // Four nights; each has new mail and drops older mail.
  for (let day = 1; day <= 4; day++) {
    const inbox = Array.from({ length: 6 }, (_, i) => message(day * 10 + i));
    ids.push((await saveTestSnapshot(repo, { alice: { INBOX: inbox } }, `2024-05-0${day}T02:00:00.000Z`)).id);
  }
  await repo.close();
});

afterEach(async () => {
  await Promise.all(stores.map((s) => s.close()));
  stores = [];
  await rm(dir, { recursive: true, force: true });
});

describe('mailark forget', () => {
  it('--dry-run lists keep/remove with reasons and removes nothing', async () => {
    const r = await mailark(['forget', '--keep-last', '1', '--keep-daily', '2', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('keep 1 latest, 2 daily snapshots');
    expect(r.stdout).toContain('tenant acme.example: keep 2 snapshots');
    expect(r.stdout).toMatch(
      new RegExp(`${ids[3]!.slice(0, 8)} +2024-05-04 02:00:00 +complete +last snapshot, daily snapshot`),
    );
    expect(r.stdout).toContain('tenant acme.example: would remove 2 snapshots');
    const repo = await Repository.open(openStore(), PASSWORD);
    expect(await repo.listSnapshots()).toHaveLength(4);
  });

  it('removes with --json output, then --prune shrinks storage and keeps what remains readable', async () => {
    const r = await mailark(['forget', '--keep-within', '1d1h', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.removed.sort()).toEqual([ids[0], ids[1]].sort());
    expect(doc.groups[0].decisions.map((d: { keep: boolean }) => d.keep)).toEqual([true, true, false, false]);

    const before = await dataBytes();
    const p = await mailark(['forget', '--keep-last', '1', '--prune', '--max-unused', '0']);
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/^deleted [1-9]\d* packs? \(/m);
    expect(p.stdout).toMatch(/^repacked \d+ packs? \(/m);
    // stdout says it all: no policy line repeated on stderr, no bare "prune plan" / "prune done".
    expect(p.stdout).toContain('keep 1 latest snapshot\n');
    expect(p.stderr).toBe('');
    const after = await dataBytes();
    // One night of four distinct nights remains.
    expect(after).toBeLessThan(before * 0.5);
    const repo = await Repository.open(openStore(), PASSWORD);
    const left = await repo.listSnapshots();
    expect(left.map((s) => s.id)).toEqual([ids[3]]);
    let n = 0;
    for await (const m of walkMessages(repo, left[0]!.snapshot)) {
      await readMessageBytes(repo, m.entry);
      n++;
    }
    expect(n).toBe(6);
  });

  it('needs no index to forget; --prune reads it and names a damaged index object', async () => {
    for (const name of await readdir(join(repoDir, 'index')))
      await writeFile(join(repoDir, 'index', name), 'damaged in the store');
    const r = await mailark(['forget', '--keep-last', '3', '--no-cache']);
    expect(r.code, r.stderr).toBe(0);
    const p = await mailark(['forget', '--keep-last', '2', '--prune', '--no-cache']);
    expect(p.code).not.toBe(0);
    expect(p.stderr).toContain('index/');
    // forget ran before prune failed: two snapshots are left.
    const snaps = await mailark(['snapshots', '--json', '--no-cache']);
    expect(JSON.parse(snaps.stdout)).toHaveLength(2);
  });

  it('--tenant limits the policy to one tenant; a tenant without snapshots is an error naming it', async () => {
    const repo = await Repository.open(openStore(), PASSWORD);
    const other = await saveTestSnapshot(
      repo,
      { bob: { INBOX: [message(99)] } },
      '2024-05-01T03:00:00.000Z',
      'other.test',
    );
    await repo.close();
    const r = await mailark(['forget', '--keep-last', '1', '--tenant', 'acme.example', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.groups.map((g: { tenant: string }) => g.tenant)).toEqual(['acme.example']);
    expect(doc.removed.sort()).toEqual(ids.slice(0, 3).sort());
    const left = await Repository.open(openStore(), PASSWORD);
    expect((await left.listSnapshots()).map((s) => s.id).sort()).toEqual([ids[3], other.id].sort());
    const none = await mailark(['forget', '--keep-last', '1', '--tenant', 'nobody.test']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^mailark: no snapshot of tenant nobody\.test in /);
  });

  it('rejects a bad duration or time zone with exit 2 and a hint', async () => {
    const d = await mailark(['forget', '--keep-within', '2 days']);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain('invalid duration "2 days"');
    expect(d.stderr).toContain('hint:');
    const z = await mailark(['forget', '--keep-daily', '1', '--time-zone', 'Mars/Olympus']);
    expect(z.code).toBe(2);
    expect(z.stderr).toContain('unknown time zone "Mars/Olympus"');
  });

  it('refuses an option given without its value, or an empty --keep-tag, instead of keeping everything', async () => {
    // Each of these once ran as an empty policy (or a tag list matching every snapshot): exit 0, nothing
    // removed, although the operator asked for a policy.
    for (const argv of [
      ['forget', '--keep-daily'],
      ['forget', '--keep-last', '--dry-run'],
      ['forget', '--keep-within'],
      ['forget', '--keep-last', '1', '--tenant'],
      ['forget', '--keep-tag', ','],
      ['forget', '--keep-last', '1', '--keep-tag', ''],
      ['prune', '--max-unused'],
    ]) {
      const r = await mailark(argv);
      expect(r.code, `${argv.join(' ')}: ${r.stdout}`).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines[0], argv.join(' ')).toMatch(
        /^mailark: .*(keep-daily|keep-last|keep-within|tenant|keep-tag|max-unused)/,
      );
    }
    const repo = await Repository.open(openStore(), PASSWORD);
    expect(await repo.listSnapshots()).toHaveLength(4);
  });
});

describe('mailark prune', () => {
  it('exits 11 naming the holder while another process holds a lock, and works once it is gone', async () => {
    const other = await Repository.open(openStore(), PASSWORD);
    const lock = await other.lock('shared', 'mailark backup');
    const r = await mailark(['prune']);
    expect(r.code).toBe(11);
    expect(r.stderr).toContain('locked (shared) by mailark backup');
    await lock.release();
    const dry = await mailark(['prune', '--dry-run']);
    expect(dry.stdout).toMatch(/^would delete 0 packs \(0 B\)$/m);
    const ok = await mailark(['prune', '--dry-run', '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ dryRun: true, snapshots: 4, stats: { unusedBlobs: 0 } });
  });

  it('prints counts with the right number', () => {
    const lines: string[] = [];
    const stats = { usedBlobs: 1, usedBytes: 10, unusedBlobs: 0, unusedBytes: 0, duplicateBlobs: 0 };
    const base = { dryRun: false, unindexedPacks: [], newPacks: [], packBytesBefore: 0, packBytesAfter: 0 };
    printPrune({ line: (t = '') => void lines.push(t) }, {
      ...base,
      deletedPacks: ['a'],
      repackedPacks: ['b', 'c'],
      stats: { ...stats, deleteBytes: 5, repackBytes: 7, repackCopyBytes: 3, unusedBytesAfter: 0 },
    } as unknown as Parameters<typeof printPrune>[1]);
    expect(lines[2]).toBe('deleted 1 pack (5 B)');
    expect(lines[3]).toBe('repacked 2 packs (7 B, 3 B of it still used)');
  });

  it('refuses a bad --max-unused with exit 2', async () => {
    const r = await mailark(['prune', '--max-unused', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid --max-unused "lots"');
  });
});
