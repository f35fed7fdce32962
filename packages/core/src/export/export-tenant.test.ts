import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMailarkError } from '../errors.js';
import { fixturesDir } from '../mail/fixture-messages.js';
import type { Repository } from '../repo/repository.js';
import { newTestRepository } from '../repo/test-repository.js';
import { openArchiveSink } from './archive-sink.js';
import { type ByteOutput, FileOutput } from './byte-output.js';
import { type ExportOptions, exportTenant } from './export-tenant.js';
import type { ManifestLine } from './manifest.js';
import { type MboxMessage, MboxrdReader } from './mbox-reader.js';
import { SnapshotExportSource } from './snapshot-export-source.js';
import { TarSink } from './tar-sink.js';
import { saveExportTestSnapshot, type TestFolder } from './test-snapshot.js';

const FIXTURES = fixturesDir();
const fx = readdirSync(FIXTURES)
  .filter((n) => n.endsWith('.eml'))
  .sort()
  .slice(0, 12)
  .map((n) => readFileSync(join(FIXTURES, n)));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fromLines = Buffer.from('Subject: froms\r\n\r\nFrom here\r\n>From there\r\n>>From everywhere\r\n');
const noNewline = Buffer.from('Subject: unterminated\r\n\r\nno line break at the end');

const TENANT = 'acme.example';
const MAIL: Record<string, TestFolder[]> = {
  'alice@acme.example': [
    {
      path: 'INBOX',
      messages: [
        { raw: fx[0]!, flags: ['\\Seen'], keywords: ['$Forwarded', 'Important'] },
        { raw: fx[1]!, flags: ['\\Answered', '\\Flagged'], uid: 7 },
        { raw: fx[2]!, internalDate: '1999-12-31T23:59:59.000Z', uid: 9 },
      ],
    },
    { path: 'Projets', selectable: false, flags: ['\\HasChildren', '\\Noselect'] },
    {
      path: 'Projets/Été 2024',
      rawPath: 'Projets/&AMk-t&AOk- 2024',
      messages: [{ raw: fx[3]! }, { raw: fx[4]!, keywords: ['Zeta'], flags: ['\\Deleted', '\\Draft'] }],
    },
    { path: 'v1.2', messages: [{ raw: fromLines }] },
    { path: 'Empty', subscribed: false },
    { path: 'Sent', specialUse: '\\Sent', messages: [{ raw: noNewline, flags: ['\\Seen'] }] },
  ],
  'bob@acme.example': [{ path: 'INBOX', messages: fx.slice(5, 9).map((raw) => ({ raw })) }],
};
const ALL_MESSAGES = Object.values(MAIL).flatMap((fs) => fs.flatMap((f) => f.messages ?? []));

let repo: Repository;
let snapshotId: string;
let work: string;

beforeAll(async () => {
  ({ repo } = await newTestRepository());
  snapshotId = await saveExportTestSnapshot(repo, TENANT, MAIL);
  work = mkdtempSync(join(tmpdir(), 'mailark-export-test-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function source(): Promise<SnapshotExportSource> {
  const { snapshot } = await repo.resolveSnapshot(snapshotId);
  return new SnapshotExportSource(repo, snapshotId, snapshot, { repository: 'memory:test' });
}

async function exportTo(out: string, opts: ExportOptions = {}) {
  const sink = await openArchiveSink(out, { cwd: work, tmpDir: work });
  return exportTenant(await source(), sink, {
    tmpDir: work,
    now: () => new Date('2024-06-02T00:00:00Z'),
    ...opts,
  });
}

/** Every file under dir, relative, sorted. */
function walk(dir: string): string[] {
  const out: string[] = [];
  const rec = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) rec(p);
      else out.push(relative(dir, p));
    }
  };
  rec(dir);
  return out.sort();
}

function readMbox(path: string, statusHeaders = false): MboxMessage[] {
  const msgs: MboxMessage[] = [];
  const r = new MboxrdReader({ statusHeaders, onMessage: (m) => msgs.push(m) });
  r.write(readFileSync(path));
  r.end();
  return msgs;
}

describe('exportTenant to a directory', () => {
  let dir: string;
  let manifest: ManifestLine[];

  beforeAll(async () => {
    const summary = await exportTo('tree');
    dir = join(work, 'tree');
    expect(summary.counts).toEqual({
      users: 2,
      folders: 7,
      messages: ALL_MESSAGES.length,
      bytes: ALL_MESSAGES.reduce((n, m) => n + m.raw.byteLength, 0),
    });
    expect(summary.archive).toMatchObject({ kind: 'dir', location: dir });
    expect(summary.formats).toEqual(['maildir', 'mbox', 'eml']);
    manifest = readFileSync(join(dir, 'manifest.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ManifestLine);
  });

  it('writes Maildir++ with exact bytes, flags, keyword letters and mtimes = internal dates', () => {
    const inbox = join(dir, 'acme.example/alice@acme.example/Maildir');
    expect(readFileSync(join(inbox, 'dovecot-keywords'), 'utf8')).toBe('0 $Forwarded\n1 Important\n');
    const cur = readdirSync(join(inbox, 'cur')).sort();
    expect(cur).toEqual(
      [
        `${Date.UTC(2024, 0, 1, 8, 30, 15) / 1000}.U1.mailark,S=${fx[0]!.length}:2,PSab`,
        `${Date.UTC(2024, 0, 2, 8, 30, 15) / 1000}.U7.mailark,S=${fx[1]!.length}:2,FR`,
        `946684799.U9.mailark,S=${fx[2]!.length}:2,`,
      ].sort(),
    );
    for (const name of cur) {
      const st = statSync(join(inbox, 'cur', name));
      expect(Math.floor(st.mtimeMs / 1000)).toBe(Number(name.split('.')[0]));
    }
    expect(sha(readFileSync(join(inbox, 'cur', cur.find((n) => n.includes('.U9.'))!)))).toBe(sha(fx[2]!));
    expect(readFileSync(join(inbox, 'dovecot-uidlist'), 'utf8')).toBe(
      `3 V1700000000 N10\n1 :${cur.find((n) => n.includes('.U1.'))!.split(':')[0]}\n7 :${
        cur.find((n) => n.includes('.U7.'))!.split(':')[0]
      }\n9 :${cur.find((n) => n.includes('.U9.'))!.split(':')[0]}\n`,
    );
    const ete = join(inbox, '.Projets.&AMk-t&AOk- 2024');
    expect(readdirSync(ete).sort()).toEqual([
      'cur',
      'dovecot-keywords',
      'dovecot-uidlist',
      'maildirfolder',
      'new',
      'tmp',
    ]);
    expect(
      readdirSync(join(ete, 'cur'))
        .map((n) => n.split(':2,')[1])
        .sort(),
    ).toEqual(['', 'DTa']);
    expect(existsSync(join(inbox, '.v1\\2e2/cur'))).toBe(true);
    expect(readdirSync(join(inbox, '.Empty/cur'))).toEqual([]);
    expect(existsSync(join(inbox, '.Projets'))).toBe(false); // \Noselect: implied by its child
    expect(readFileSync(join(inbox, 'subscriptions'), 'utf8')).toBe(
      'V\t2\n\nINBOX\nProjets\nProjets\t&AMk-t&AOk- 2024\nSent\nv1\\2e2\n',
    );
  });

  it('writes one mboxrd file per folder that reads back to the exact bytes', () => {
    const mbox = join(dir, 'acme.example/alice@acme.example/mbox');
    expect(walk(mbox)).toEqual([
      'Empty.mbox',
      'INBOX.mbox',
      'Projets/Été 2024.mbox',
      'Sent.mbox',
      'v1.2.mbox',
    ]);
    expect(readFileSync(join(mbox, 'Empty.mbox')).length).toBe(0);
    const inbox = readMbox(join(mbox, 'INBOX.mbox'));
    expect(inbox.map((m) => m.candidates.some((c) => c.sha256 === sha(fx[m.index]!)))).toEqual([
      true,
      true,
      true,
    ]);
    expect(inbox[2]?.date?.toISOString()).toBe('1999-12-31T23:59:59.000Z');
    const [froms] = readMbox(join(mbox, 'v1.2.mbox'));
    expect(froms?.candidates).toContainEqual({ size: fromLines.length, sha256: sha(fromLines) });
    expect(readFileSync(join(mbox, 'v1.2.mbox'), 'latin1')).toContain(
      '\r\n>From here\r\n>>From there\r\n>>>From everywhere',
    );
    const [sent] = readMbox(join(mbox, 'Sent.mbox'));
    expect(sent?.candidates).toContainEqual({ size: noNewline.length, sha256: sha(noNewline) });
    // The manifest gives each message's offset in its mbox file.
    const line = manifest.find((m) => m.folder === 'INBOX' && m.uid === 9)!;
    expect(line.mboxOffset).toBe(inbox[2]?.offset);
  });

  it('writes every message as <uid>.eml with its exact bytes', () => {
    const eml = join(dir, 'acme.example/alice@acme.example/eml');
    expect(walk(eml)).toEqual([
      'INBOX/1.eml',
      'INBOX/7.eml',
      'INBOX/9.eml',
      'Projets/Été 2024/1.eml',
      'Projets/Été 2024/2.eml',
      'Sent/1.eml',
      'v1.2/1.eml',
    ]);
    expect(readdirSync(join(eml, 'Empty'))).toEqual([]);
    expect(sha(readFileSync(join(eml, 'Projets/Été 2024/2.eml')))).toBe(sha(fx[4]!));
  });

  it('describes everything in manifest.jsonl, folders.jsonl, export.json, README.txt', () => {
    expect(manifest).toHaveLength(ALL_MESSAGES.length);
    const m = manifest.find((l) => l.folder === 'Projets/Été 2024' && l.uid === 2)!;
    expect(m).toMatchObject({
      user: 'alice@acme.example',
      folderRaw: 'Projets/&AMk-t&AOk- 2024',
      delimiter: '/',
      uidValidity: '1700000000',
      flags: ['\\Deleted', '\\Draft'],
      keywords: ['Zeta'],
      size: fx[4]!.length,
      sha256: sha(fx[4]!),
      paths: {
        eml: 'acme.example/alice@acme.example/eml/Projets/Été 2024/2.eml',
        mbox: 'acme.example/alice@acme.example/mbox/Projets/Été 2024.mbox',
      },
    });
    expect(m.paths.maildir).toMatch(
      /^acme\.example\/alice@acme\.example\/Maildir\/\.Projets\.&AMk-t&AOk- 2024\/cur\/\d+\.U2\.mailark,S=\d+:2,DTa$/,
    );
    const folders = readFileSync(join(dir, 'folders.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(folders.map((f) => [f.user, f.folder, f.selectable, f.messages])).toEqual([
      ['alice@acme.example', 'Empty', true, 0],
      ['alice@acme.example', 'INBOX', true, 3],
      ['alice@acme.example', 'Projets', false, 0],
      ['alice@acme.example', 'Projets/Été 2024', true, 2],
      ['alice@acme.example', 'Sent', true, 1],
      ['alice@acme.example', 'v1.2', true, 1],
      ['bob@acme.example', 'INBOX', true, 4],
    ]);
    expect(folders.find((f) => f.folder === 'Sent').specialUse).toBe('\\Sent');
    const info = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8'));
    expect(info).toMatchObject({
      tenant: TENANT,
      origin: { kind: 'snapshot', snapshotId },
      formats: ['maildir', 'mbox', 'eml'],
      options: { mboxStatusHeaders: false },
    });
    expect(readFileSync(join(dir, 'SHA256SUMS'), 'utf8').split('\n')[0]).toMatch(/ {2}export\.json$/);
    const readme = readFileSync(join(dir, 'README.txt'), 'utf8');
    expect(readme).toContain(snapshotId);
    expect(readme).toContain('sha256sum -c SHA256SUMS');
    expect(readme).toContain('Importer');
    expect(readme).toContain(`2 mailboxes, 7 folders, ${ALL_MESSAGES.length} messages`);
  });

  it('lists every file once in SHA256SUMS, which sha256sum -c accepts', () => {
    const sums = readFileSync(join(dir, 'SHA256SUMS'), 'utf8').trim().split('\n');
    const files = walk(dir).filter((f) => f !== 'SHA256SUMS');
    expect(sums).toHaveLength(files.length);
    const r = spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(files.length);
  });

  it('leaves no temporary file behind', () => {
    expect(readdirSync(work).filter((n) => n.includes('partial') || n.startsWith('.mailark-spool'))).toEqual(
      [],
    );
  });
});

describe('exportTenant to archives', () => {
  for (const name of ['all.tar', 'all.tar.gz', 'all.zip']) {
    it(`${name}: the archive tools accept it and it unpacks to the same tree as the directory export`, async () => {
      const summary = await exportTo(name);
      const path = join(work, name);
      expect(summary.archive.bytes).toBe(statSync(path).size);
      expect(summary.archive.sha256).toBe(sha(readFileSync(path)));
      const into = mkdtempSync(join(work, 'unpack-'));
      const check = name.endsWith('.zip')
        ? spawnSync('unzip', ['-t', path], { encoding: 'utf8' })
        : spawnSync('tar', [name.endsWith('.gz') ? '-tzf' : '-tf', path], { encoding: 'utf8' });
      expect(check.status, check.stderr).toBe(0);
      const unpack = name.endsWith('.zip')
        ? spawnSync('unzip', ['-q', path, '-d', into], { encoding: 'utf8' })
        : spawnSync('tar', ['-xf', path, '-C', into], { encoding: 'utf8' });
      expect(unpack.status, unpack.stderr).toBe(0);
      const dir = join(work, 'tree');
      if (!existsSync(dir)) await exportTo('tree');
      expect(walk(into)).toEqual(walk(dir));
      for (const f of walk(dir)) {
        if (f === 'SHA256SUMS' || f.endsWith('export.json') || f.endsWith('README.txt')) continue;
        expect(sha(readFileSync(join(into, f))), f).toBe(sha(readFileSync(join(dir, f))));
      }
      {
        // mtimes (= internal dates) survive to the second: tar headers, zip extended timestamps.
        const cur = join(into, 'acme.example/alice@acme.example/Maildir/cur');
        for (const n of readdirSync(cur))
          expect(Math.floor(statSync(join(cur, n)).mtimeMs / 1000)).toBe(Number(n.split('.')[0]));
      }
    });
  }

  it('streams an archive to stdout', async () => {
    const chunks: Buffer[] = [];
    const stdout = new Writable({
      write(chunk, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    const sink = await openArchiveSink('-', { stdout, stdoutKind: 'tgz', tmpDir: work });
    const s = await exportTenant(await source(), sink, { tmpDir: work, formats: ['eml'] });
    const bytes = Buffer.concat(chunks);
    expect(s.archive).toMatchObject({ location: 'stdout', bytes: bytes.length, sha256: sha(bytes) });
    const r = spawnSync('tar', ['-tzf', '-'], { input: bytes, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('acme.example/bob@acme.example/eml/INBOX/4.eml');
    expect(r.stdout).not.toContain('Maildir');
  });
});

describe('exportTenant options', () => {
  it('exports only the chosen users and formats, and refuses unknown users', async () => {
    const s = await exportTo('bob-only', { users: ['bob@acme.example'], formats: ['mbox'] });
    expect(s.counts).toMatchObject({ users: 1, messages: 4 });
    expect(walk(join(work, 'bob-only')).filter((f) => f.includes('/'))).toEqual([
      'acme.example/bob@acme.example/mbox/INBOX.mbox',
    ]);
    const err = await exportTo('nobody', { users: ['carol@acme.example'] }).catch((e) => e);
    expect(isMailarkError(err, 'NOT_FOUND')).toBe(true);
    expect(err.message).toContain('carol@acme.example');
    expect(existsSync(join(work, 'nobody'))).toBe(false);
  });

  it('adds Status/X-Status/X-Keywords lines to mbox messages on request', async () => {
    await exportTo('status', { formats: ['mbox'], mboxStatusHeaders: true });
    const file = join(work, 'status/acme.example/alice@acme.example/mbox/INBOX.mbox');
    expect(readFileSync(file, 'latin1')).toMatch(
      /\nStatus: RO\r?\nX-Status: \r?\nX-Keywords: \$Forwarded Important\r?\n/,
    );
    const msgs = readMbox(file, true);
    expect(msgs.map((m) => m.status)).toEqual([
      { seen: true, xstatus: '', keywords: ['$Forwarded', 'Important'] },
      { seen: false, xstatus: 'AF', keywords: [] },
      { seen: false, xstatus: '', keywords: [] },
    ]);
    expect(msgs[0]?.candidates).toContainEqual({ size: fx[0]!.length, sha256: sha(fx[0]!) });
  });
});

describe('exportTenant failures', () => {
  it('refuses to overwrite an existing output', async () => {
    await exportTo('twice.tar', { formats: ['eml'] });
    const err = await exportTo('twice.tar').catch((e) => e);
    expect(isMailarkError(err, 'USAGE')).toBe(true);
    expect(err.hint).toMatch(/never overwrites/);
  });

  it('names an output location that cannot be written', async () => {
    const err = await openArchiveSink('/sys/mailark-export.tar').catch((e) => e);
    expect(isMailarkError(err, 'STORE_IO')).toBe(true);
    expect(err.message).toContain('/sys/mailark-export.tar');
    const missing = await openArchiveSink(join(work, 'no/such/dir/x.zip')).catch((e) => e);
    expect(missing.hint).toMatch(/does not exist/);
  });

  it('a full disk mid-export fails cleanly: no file under the final name, no temporary file left', async () => {
    const path = join(work, 'full.tar.gz');
    const inner = await FileOutput.open(path);
    let aborted = false;
    let written = 0;
    const full: ByteOutput = {
      location: path,
      writable: new Writable({
        write(chunk: Buffer, _enc, cb) {
          written += chunk.length;
          if (written > 4_000) {
            cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
            return;
          }
          inner.writable.write(chunk, cb);
        },
      }),
      finish: () => inner.finish(),
      abort: async (r) => {
        aborted = true;
        await inner.abort(r);
      },
    };
    const err = await exportTenant(await source(), TarSink.open(full, 1), { tmpDir: work }).catch((e) => e);
    expect(isMailarkError(err, 'STORE_IO')).toBe(true);
    expect(err.hint).toMatch(/disk is full/);
    expect(aborted).toBe(true);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(work).filter((n) => n.includes('partial') || n.startsWith('.mailark-spool'))).toEqual(
      [],
    );
  });

  it('an interrupted export leaves nothing and says so', async () => {
    const ac = new AbortController();
    let seen = 0;
    const err = await exportTo('stopped.zip', {
      signal: ac.signal,
      reporter: {
        log() {},
        progress(s) {
          if (++seen === 3) ac.abort();
          void s;
        },
      },
    }).catch((e) => e);
    expect(isMailarkError(err, 'INTERRUPTED')).toBe(true);
    expect(existsSync(join(work, 'stopped.zip'))).toBe(false);
  });
});
