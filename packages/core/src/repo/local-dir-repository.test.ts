/**
 * The repository on the default store (a local directory): the same promises as on memory, plus
 * what only a real filesystem shows (objects as files, ranged reads from disk, reopen from disk).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { fixturesDir } from '../mail/fixture-messages.js';
import { readMessageBytes, walkMessages } from '../mail/snapshot-tree.js';
import { LocalDirStore } from '../store/local-dir-store.js';
import { Repository } from './repository.js';
import { saveTestSnapshot, TEST_KDF } from './test-repository.js';

const dirs: string[] = [];
/** Stores opened by a test, closed after it (their open-file cache holds pack handles). */
const stores: LocalDirStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function openStore(dir: string): LocalDirStore {
  const s = new LocalDirStore(dir);
  stores.push(s);
  return s;
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mailark-repo-'));
  dirs.push(d);
  return d;
}

function files(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(dir, join(prefix, e.name)) : [join(prefix, e.name)],
  );
}

describe('Repository on LocalDirStore', () => {
  it('init, save, reopen from disk, read every message byte-exact', async () => {
    const dir = tempDir();
    const repo = await Repository.init(openStore(dir), 'pw', { kdf: TEST_KDF });
    const msgs = readdirSync(fixturesDir())
      .sort()
      .slice(0, 15)
      .map((f) => readFileSync(join(fixturesDir(), f)));
    const { id } = await saveTestSnapshot(repo, { 'alice@example.com': { INBOX: msgs } });
    expect(repo.config.capabilities.conditionalWrites).toBe(true);

    const layout = files(dir).sort();
    expect(layout).toContain('config');
    expect(layout.some((f) => /^keys\/[0-9a-f]{64}$/.test(f))).toBe(true);
    expect(layout.some((f) => /^data\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(f))).toBe(true);
    expect(layout.some((f) => /^index\/[0-9a-f]{64}$/.test(f))).toBe(true);
    expect(layout).toContain(`snapshots/${id}`);

    const reopened = await Repository.open(openStore(dir), 'pw');
    const { snapshot } = await reopened.resolveSnapshot('latest');
    const back: Buffer[] = [];
    for await (const m of walkMessages(reopened, snapshot))
      back.push(Buffer.from(await readMessageBytes(reopened, m.entry)));
    expect(back.map((b) => b.toString('base64'))).toEqual(msgs.map((b) => b.toString('base64')));
  });

  it('writes packs through a spool: pending blobs read back, each pack file named by its SHA-256, no temp left', async () => {
    const dir = tempDir();
    // Small packs, so a few blobs make several packs (and keep spooling across seals).
    const repo = await Repository.init(openStore(dir), 'pw', { kdf: TEST_KDF, packSize: 4096 });
    const blobs = Array.from({ length: 12 }, (_, i) => randomBytes(1500 + i * 97));
    const ids: string[] = [];
    for (const b of blobs) {
      const { id, added } = await repo.saveBlob('data', b);
      expect(added).toBe(true);
      ids.push(id);
      // Readable at once, whether its pack is still open (spooled) or already written.
      expect(Buffer.from(await repo.loadBlob(id)).equals(b)).toBe(true);
    }
    // A blob too small to fill a pack: its pack stays open, spooled to a temp file.
    const small = await repo.saveBlob('data', randomBytes(100));
    expect(files(dir).filter((f) => f.includes('.tmp-')).length).toBe(1);
    expect((await repo.loadBlob(small.id)).byteLength).toBe(100);
    await repo.flush();
    const packs = files(dir).filter((f) => f.startsWith('data/'));
    expect(packs.length).toBeGreaterThan(2);
    for (const f of packs) {
      expect(f).toMatch(/^data\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
      expect(
        createHash('sha256')
          .update(readFileSync(join(dir, f)))
          .digest('hex'),
      ).toBe(f.slice(8));
    }
    // The temp names go once the pack is published (asynchronously, right after).
    await eventually(() => expect(files(dir).filter((f) => f.includes('.tmp-'))).toEqual([]));
    const reopened = await Repository.open(openStore(dir), 'pw');
    for (const [i, id] of ids.entries())
      expect(Buffer.from(await reopened.loadBlob(id)).equals(blobs[i] as Buffer)).toBe(true);
  });

  it('a byte flipped on disk is CORRUPT naming the pack file', async () => {
    const dir = tempDir();
    const repo = await Repository.init(openStore(dir), 'pw', { kdf: TEST_KDF });
    const blob = Buffer.from('a message body that will be damaged on disk\r\n'.repeat(40));
    const { id } = await repo.saveBlob('data', blob);
    await repo.flush();
    const pack = files(dir).find((f) => f.startsWith('data/')) as string;
    const bytes = readFileSync(join(dir, pack));
    bytes[30] = (bytes[30] as number) ^ 1;
    writeFileSync(join(dir, pack), bytes);
    expect(statSync(join(dir, pack)).size).toBe(bytes.byteLength);
    const reopened = await Repository.open(openStore(dir), 'pw');
    await expect(reopened.loadBlob(id)).rejects.toMatchObject({
      code: 'CORRUPT',
      message: expect.stringContaining(pack),
    });
  });
});
