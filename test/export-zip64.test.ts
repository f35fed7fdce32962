/**
 * ZIP64 past 65,535 entries (the cheap way to need it; past 4 GiB is bench/zip64.mjs): an export of
 * 33,000 messages as Maildir and EML holds more than 66,000 files. unzip, Python's zipfile and
 * verify-export (yauzl) must all read every entry.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { saveExportTestSnapshot } from '../packages/core/src/export/test-snapshot.js';
import {
  exportTenant,
  openArchiveSink,
  Repository,
  SnapshotExportSource,
  verifyExport,
} from '../packages/core/src/index.js';
import { TEST_KDF } from '../packages/core/src/repo/test-repository.js';
import { MemoryStore } from '../packages/core/src/store/memory-store.js';
import { tempDir } from './harness/fixtures.js';

const MESSAGES = 33_000;

describe('zip export with more than 65,535 entries', () => {
  it('is written with ZIP64 records that unzip, Python and verify-export read in full', async () => {
    const work = tempDir('zip64-');
    const repo = await Repository.init(new MemoryStore(), 'pw', { kdf: TEST_KDF });
    const messages = Array.from({ length: MESSAGES }, (_, i) => ({
      raw: Buffer.from(`Subject: ${i}\r\nMessage-ID: <${i}@zip64.example>\r\n\r\nmessage ${i}\r\n`),
      flags: i % 2 === 0 ? ['\\Seen'] : [],
      internalDate: new Date(Date.UTC(2020, 0, 1) + i * 60_000).toISOString(),
    }));
    const id = await saveExportTestSnapshot(repo, 'zip64.example', {
      'many@zip64.example': [{ path: 'INBOX', messages }],
    });
    const { snapshot } = await repo.resolveSnapshot(id);
    const zip = join(work, 'many.zip');
    const s = await exportTenant(
      new SnapshotExportSource(repo, id, snapshot),
      await openArchiveSink(zip, { tmpDir: work, compressionLevel: 1 }),
      { formats: ['maildir', 'eml'], tmpDir: work },
    );
    expect(s.files).toBeGreaterThan(2 * MESSAGES);

    const bytes = readFileSync(zip);
    expect(bytes.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true); // ZIP64 end of central directory
    expect(bytes.includes(Buffer.from([0x50, 0x4b, 0x06, 0x07]))).toBe(true); // and its locator

    const t = spawnSync('unzip', ['-tq', zip], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(t.status, t.stdout.slice(-2000) + t.stderr.slice(-2000)).toBe(0);
    const py = spawnSync(
      'python3',
      [
        '-c',
        'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(len([i for i in z.infolist() if not i.is_dir()])); z.testzip()',
        zip,
      ],
      { encoding: 'utf8' },
    );
    expect(py.status, py.stderr).toBe(0);
    expect(Number(py.stdout.trim())).toBe(s.files);

    const v = await verifyExport(zip, repo, { tmpDir: work });
    expect(v.differences).toEqual([]);
    expect(v.messages).toEqual({ expected: MESSAGES, found: { maildir: MESSAGES, eml: MESSAGES } });
    expect(v.files).toBe(s.files);
  }, 600_000);
});
