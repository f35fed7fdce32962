import {
  appendFileSync,
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMailarkError } from '../errors.js';
import { fixturesDir } from '../mail/fixture-messages.js';
import type { Repository } from '../repo/repository.js';
import { newTestRepository } from '../repo/test-repository.js';
import { openArchiveSink } from './archive-sink.js';
import { type ExportOptions, exportTenant } from './export-tenant.js';
import { SnapshotExportSource } from './snapshot-export-source.js';
import { saveExportTestSnapshot, type TestFolder } from './test-snapshot.js';
import { verifyExport } from './verify-export.js';

const FIXTURES = fixturesDir();
const fx = readdirSync(FIXTURES)
  .filter((n) => n.endsWith('.eml'))
  .sort()
  .slice(20, 30)
  .map((n) => readFileSync(join(FIXTURES, n)));

const mail = (extra = false): Record<string, TestFolder[]> => ({
  'ann@corp.example': [
    {
      path: 'INBOX',
      messages: [
        { raw: fx[0]!, flags: ['\\Seen'], keywords: ['$Forwarded', 'Work'] },
        { raw: fx[1]!, flags: ['\\Flagged'] },
        { raw: Buffer.from('Subject: x\r\n\r\nFrom me\r\nno end'), uid: 10 },
      ],
    },
    { path: 'Archives', selectable: false },
    { path: 'Archives/2023', messages: [{ raw: fx[2]! }, { raw: fx[3]!, keywords: ['Old'] }] },
    { path: 'Notes.v2', messages: extra ? [{ raw: fx[4]! }, { raw: fx[5]! }] : [{ raw: fx[4]! }] },
  ],
  'ben@corp.example': [{ path: 'INBOX', messages: [{ raw: fx[6]! }, { raw: fx[7]! }] }],
});

let repo: Repository;
let snapshotId: string;
let newerId: string;
let work: string;

beforeAll(async () => {
  ({ repo } = await newTestRepository());
  snapshotId = await saveExportTestSnapshot(repo, 'corp.example', mail());
  newerId = await saveExportTestSnapshot(repo, 'corp.example', mail(true), '2024-06-02T02:00:00.000Z');
  work = mkdtempSync(join(tmpdir(), 'mailark-verify-test-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function exportTo(out: string, opts: ExportOptions = {}): Promise<string> {
  const { snapshot } = await repo.resolveSnapshot(snapshotId);
  const sink = await openArchiveSink(out, { cwd: work, tmpDir: work });
  await exportTenant(new SnapshotExportSource(repo, snapshotId, snapshot), sink, { tmpDir: work, ...opts });
  return join(work, out);
}

const verify = (path: string, snapshot?: string) =>
  verifyExport(path, repo, { tmpDir: work, ...(snapshot === undefined ? {} : { snapshot }) });

describe('verifyExport on a faithful export', () => {
  for (const name of ['good-dir', 'good.tar', 'good.tgz', 'good.zip']) {
    it(`${name}: every file and every message checks out`, async () => {
      const r = await verify(await exportTo(name));
      expect(r.differences).toEqual([]);
      expect(r).toMatchObject({
        ok: true,
        snapshotId,
        tenant: 'corp.example',
        formats: ['maildir', 'mbox', 'eml'],
        users: ['ann@corp.example', 'ben@corp.example'],
        messages: { expected: 8, found: { maildir: 8, mbox: 8, eml: 8 } },
      });
      expect(r.checkedFiles).toBe(r.files - 1);
    });
  }

  it('checks mbox status headers and partial exports (users, formats)', async () => {
    const r = await verify(
      await exportTo('partial.tgz', {
        users: ['ben@corp.example'],
        formats: ['mbox'],
        mboxStatusHeaders: true,
      }),
    );
    expect(r.differences).toEqual([]);
    expect(r.messages).toEqual({ expected: 2, found: { mbox: 2 } });
  });
});

describe('verifyExport on a damaged export names the damage', () => {
  let base: string;
  beforeAll(async () => {
    base = await exportTo('base-dir');
  });
  const copy = (name: string) => {
    const to = join(work, name);
    cpSync(base, to, { recursive: true });
    return to;
  };
  const ann = 'corp.example/ann@corp.example';

  it('a changed EML file', async () => {
    const dir = copy('t-eml');
    appendFileSync(join(dir, ann, 'eml/INBOX/2.eml'), 'x');
    const r = await verify(dir);
    expect(r.ok).toBe(false);
    expect(r.differences.map((d) => [d.kind, d.path])).toEqual(
      expect.arrayContaining([
        ['content', `${ann}/eml/INBOX/2.eml`],
        ['checksum', `${ann}/eml/INBOX/2.eml`],
      ]),
    );
  });

  it('a Maildir file whose flags were changed', async () => {
    const dir = copy('t-flags');
    const cur = join(dir, ann, 'Maildir/cur');
    const name = readdirSync(cur).find((n) => n.includes('.U1.'))!;
    renameSync(join(cur, name), join(cur, name.replace(/:2,.*$/, ':2,S')));
    const r = await verify(dir);
    const flags = r.differences.find((d) => d.kind === 'flags');
    expect(flags).toMatchObject({ format: 'maildir', user: 'ann@corp.example', folder: 'INBOX', uid: 1 });
    expect(flags?.message).toContain('$Forwarded');
    expect(r.differences.some((d) => d.kind === 'missing' && d.path === `${ann}/Maildir/cur/${name}`)).toBe(
      true,
    );
  });

  it('a missing message file, and a file that does not belong', async () => {
    const dir = copy('t-missing');
    rmSync(join(dir, ann, 'eml/Archives/2023/2.eml'));
    writeFileSync(join(dir, ann, 'eml/INBOX/99.eml'), 'Subject: intruder\r\n\r\n');
    const r = await verify(dir);
    expect(r.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'missing', format: 'eml', folder: 'Archives/2023', uid: 2 }),
        expect.objectContaining({ kind: 'missing', path: `${ann}/eml/Archives/2023/2.eml` }),
        expect.objectContaining({ kind: 'unexpected', path: `${ann}/eml/INBOX/99.eml` }),
      ]),
    );
  });

  it('an mbox with a message altered', async () => {
    const dir = copy('t-mbox');
    const file = join(dir, ann, 'mbox/INBOX.mbox');
    writeFileSync(file, readFileSync(file, 'latin1').replace('\n>From me', '\nFrom me'), 'latin1');
    const r = await verify(dir);
    expect(r.differences.some((d) => d.kind === 'checksum' && d.path === `${ann}/mbox/INBOX.mbox`)).toBe(
      true,
    );
    // The unquoted ">From" now starts a message of its own: the third message no longer matches.
    expect(r.differences.some((d) => d.format === 'mbox' && d.path === `${ann}/mbox/INBOX.mbox`)).toBe(true);
  });

  it('a flipped byte inside a tar archive', async () => {
    const tar = await exportTo('t-flip.tar', { formats: ['eml'] });
    const bytes = readFileSync(tar);
    const at = bytes.indexOf(fx[6]!.subarray(200, 240));
    expect(at).toBeGreaterThan(0);
    bytes[at] = (bytes[at] as number) ^ 0x20;
    writeFileSync(tar, bytes);
    const r = await verify(tar);
    expect(r.ok).toBe(false);
    expect(r.differences[0]).toMatchObject({
      kind: 'content',
      path: 'corp.example/ben@corp.example/eml/INBOX/1.eml',
      uid: 1,
    });
  });

  it('compared with another snapshot, the messages it lacks are named', async () => {
    const r = await verify(base, newerId);
    expect(r.ok).toBe(false);
    expect(r.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'missing', format: 'maildir', folder: 'Notes.v2', uid: 2 }),
        expect.objectContaining({ kind: 'missing', format: 'mbox', folder: 'Notes.v2' }),
        expect.objectContaining({ kind: 'manifest', folder: 'Notes.v2', uid: 2 }),
      ]),
    );
  });

  it('refuses what is not an export', async () => {
    const empty = mkdtempSync(join(work, 'empty-'));
    expect(isMailarkError(await verify(empty).catch((e) => e), 'NOT_FOUND')).toBe(true);
    expect(isMailarkError(await verify(join(work, 'nothing-here.tar')).catch((e) => e), 'NOT_FOUND')).toBe(
      true,
    );
  });
});
