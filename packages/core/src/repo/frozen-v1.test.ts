/**
 * Compatibility: a repository written by format v1 (fixtures/v1, frozen) must open and read back
 * byte-exact with every later mailark.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRepository } from '../check/check.js';
import { readMessageBytes, walkMessages } from '../mail/snapshot-tree.js';
import { LocalDirStore } from '../store/local-dir-store.js';
import { Repository } from './repository.js';

const here = dirname(fileURLToPath(import.meta.url));
const expected = JSON.parse(readFileSync(join(here, 'fixtures/v1/expected.json'), 'utf8')) as {
  password: string;
  repositoryId: string;
  snapshots: string[];
  messages: Array<{ file: string; size: number; sha256: string }>;
};
// A copy: nothing a test does may touch the frozen files.
const dir = mkdtempSync(join(tmpdir(), 'mailark-v1-'));
cpSync(join(here, 'fixtures/v1/repo'), dir, { recursive: true });
/** Stores opened by the tests, closed at the end (their open-file cache holds pack handles). */
const stores: LocalDirStore[] = [];
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

function openStore(): LocalDirStore {
  const s = new LocalDirStore(dir);
  stores.push(s);
  return s;
}

describe('frozen format v1 repository', () => {
  it('opens, lists its snapshots and reads every message byte-exact', async () => {
    const repo = await Repository.open(openStore(), expected.password);
    expect(repo.config.id).toBe(expected.repositoryId);
    expect(repo.config.version).toBe(1);
    const snaps = await repo.listSnapshots();
    expect(snaps.map((s) => s.id)).toEqual(expected.snapshots);
    const seen: string[] = [];
    for (const { snapshot } of snaps) {
      for await (const m of walkMessages(repo, snapshot)) {
        const bytes = await readMessageBytes(repo, m.entry); // verifies size and SHA-256
        expect(bytes.byteLength).toBe(m.entry.size);
        seen.push(`${m.user}|${m.folder.path}|${m.entry.sha256}`);
      }
    }
    const sha = expected.messages.map((x) => x.sha256);
    expect(seen).toEqual([
      `alice@example.com|INBOX|${sha[0]}`,
      `alice@example.com|INBOX|${sha[1]}`,
      `alice@example.com|Été/Archives|${sha[2]}`,
      `alice@example.com|INBOX|${sha[0]}`,
      `bob@example.com|INBOX|${sha[0]}`,
      `bob@example.com|INBOX|${sha[1]}`,
      `bob@example.com|INBOX|${sha[2]}`,
    ]);
  });

  it('checks clean, data included', async () => {
    const repo = await Repository.open(openStore(), expected.password, { index: 'lenient' });
    const report = await checkRepository(repo, { readData: true });
    expect(report.errors).toEqual([]);
    expect(report.counts.packsRead).toBe(report.counts.packs);
  });

  it('refuses another password', async () => {
    await expect(Repository.open(openStore(), 'not it')).rejects.toMatchObject({
      code: 'WRONG_PASSWORD',
    });
  });
});
