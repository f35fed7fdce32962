import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import type { MessageEntry } from '../mail/snapshot.js';
import type { TreeReader } from '../mail/snapshot-tree.js';
import { emlFileName, writeEmlFile } from './eml-files.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Blobs by id; the entry's content is its two halves. */
function fixture(text: string, over: Partial<MessageEntry> = {}): { repo: TreeReader; entry: MessageEntry } {
  const bytes = Buffer.from(text, 'latin1');
  const half = Math.floor(bytes.length / 2);
  const blobs = new Map([
    ['a', bytes.subarray(0, half)],
    ['b', bytes.subarray(half)],
  ]);
  const repo: TreeReader = {
    async loadBlob(id) {
      const b = blobs.get(id);
      if (b === undefined) throw new MailarkError('NOT_FOUND', id);
      return b;
    },
    async loadTree() {
      throw new Error('no trees here');
    },
  };
  const entry: MessageEntry = {
    uid: 5,
    size: bytes.length,
    sha256: sha(bytes),
    internalDate: '2026-11-21T08:15:42.000Z',
    flags: [],
    keywords: [],
    content: ['a', 'b'],
    h: { subject: 'Facture n° 42 — Été!' },
    ...over,
  };
  return { repo, entry };
}

describe('emlFileName', () => {
  it('is safe, stable and readable', () => {
    const { entry } = fixture('x');
    expect(emlFileName(entry)).toBe(`2026-11-21_0815_Facture-n-42-Ete_${entry.sha256.slice(0, 8)}.eml`);
    const odd = emlFileName({ ...entry, h: { subject: '../../etc/passwd \u0000 日本' } });
    expect(odd).toMatch(/^[A-Za-z0-9_-]+\.eml$/);
    expect(odd).not.toContain('/');
    expect(odd.startsWith('2026-11-21_0815_etc-passwd_')).toBe(true);
    expect(emlFileName({ ...entry, h: {} })).toContain('_no-subject_');
    expect(emlFileName({ ...entry, h: { subject: 'x'.repeat(500) } }).length).toBeLessThan(100);
  });
});

describe('writeEmlFile', () => {
  it('writes the exact bytes with mtime = internal date, then is idempotent', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'mailark-eml-')), 'out', 'nested');
    // Bare LF, 8-bit and NUL bytes must survive unchanged.
    const { repo, entry } = fixture('Subject: =?utf-8?q?=C3=89t=C3=A9?=\n\nbody \u00e9\u0000 end\n');
    const first = await writeEmlFile(repo, entry, dir);
    expect(first.status).toBe('restored');
    const bytes = await readFile(first.file);
    expect(sha(bytes)).toBe(entry.sha256);
    expect((await stat(first.file)).mtime.toISOString()).toBe('2026-11-21T08:15:42.000Z');
    const again = await writeEmlFile(repo, entry, dir);
    expect(again).toEqual({ status: 'already-present', file: first.file });
    expect(await readdir(dir)).toEqual([first.file.split('/').at(-1)]); // no temp file left behind
  });

  it('never overwrites another file and reports a dry run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailark-eml-'));
    const { repo, entry } = fixture('Subject: a\r\n\r\nb\r\n');
    const dry = await writeEmlFile(repo, entry, dir, { dryRun: true });
    expect(dry.status).toBe('would-restore');
    expect(await readdir(dir)).toEqual([]);
    await writeFile(join(dir, emlFileName(entry)), 'something else');
    const clash = await writeEmlFile(repo, entry, dir);
    expect(clash.status).toBe('failed');
    expect(clash.error?.message).toContain('not overwritten');
    expect((await readFile(clash.file)).toString()).toBe('something else');
  });

  it('fails the item, not the run, when the stored bytes do not verify', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailark-eml-'));
    const { repo, entry } = fixture('Subject: a\r\n\r\nb\r\n', { sha256: '0'.repeat(64) });
    const out = await writeEmlFile(repo, entry, dir);
    expect(out.status).toBe('failed');
    expect(out.error?.code).toBe('CORRUPT');
    expect(await readdir(dir)).toEqual([]);
  });
});
