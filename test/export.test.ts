/**
 * The reversibility export through real software. A mailbox on the real Dovecot (the 75 real messages
 * and the nasty ones, in non-ASCII folders, with flags, keywords and internal dates) is backed up,
 * exported, and then:
 * - the Maildir tree, served by a FRESH Dovecot, gives every message back with the same SHA-256 of
 *   BODY[], flags, keywords, internal date, UID, UIDVALIDITY and folder name as the original server;
 * - Python's mailbox module reads every mbox file, and mboxrd unquoting (done in Python) gives the
 *   exact bytes;
 * - tar and unzip accept the archives; verify-export passes, and names a damaged entry;
 * - an export straight from the live server is the same export (verify-export against the snapshot);
 * - folder names only Dovecot's listescape can hold ("v1.2", "a\b", "~x") survive a Dovecot round trip;
 * - the archive streams to S3 (multipart); an upload that fails mid-way is aborted and reported.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { saveExportTestSnapshot } from '../packages/core/src/export/test-snapshot.js';
import {
  exportTenant,
  ImapExportSource,
  isMailarkError,
  type ManifestLine,
  openArchiveSink,
  parseImapEndpoint,
  RecordingReporter,
  Repository,
  runBackup,
  SnapshotExportSource,
  splitFlags,
  verifyExport,
} from '../packages/core/src/index.js';
import { TEST_KDF } from '../packages/core/src/repo/test-repository.js';
import { LocalDirStore } from '../packages/core/src/store/local-dir-store.js';
import { MemoryStore } from '../packages/core/src/store/memory-store.js';
import { type DovecotInstance, startDovecot } from '../scripts/lib/dovecot.mjs';
import {
  appendMessages,
  closeRepository,
  fixtureFiles,
  freshPrefix,
  imapServer,
  nastyMessages,
  newUser,
  type ServerFolder,
  serverState,
  sha256,
  type TestUser,
  tempDir,
} from './harness/fixtures.js';

const TENANT = 'example.test';
let user: TestUser;
let original: ServerFolder[];
let repo: Repository;
let snapshotId: string;
let work: string;

function endpoint() {
  const s = imapServer();
  return parseImapEndpoint(s.url, { adminUser: s.masterUser, password: s.masterPassword });
}

async function exportSnapshot(out: string, opts: Parameters<typeof exportTenant>[2] = {}) {
  const { snapshot } = await repo.resolveSnapshot(snapshotId);
  const sink = await openArchiveSink(out, { tmpDir: work });
  return exportTenant(new SnapshotExportSource(repo, snapshotId, snapshot), sink, { tmpDir: work, ...opts });
}

beforeAll(async () => {
  work = tempDir('export-');
  user = newUser('export');
  const fx = fixtureFiles().map((f) => f.raw);
  const date = (i: number) =>
    new Date(Date.UTC(2019 + (i % 5), i % 12, 1 + (i % 28), i % 24, (i * 7) % 60, (i * 13) % 60));
  const flagsOf = (i: number) =>
    [
      ['\\Seen', '$Forwarded'],
      ['\\Flagged', 'Projet_X'],
      ['\\Answered', '\\Seen'],
      [],
      ['$Label1', 'Important', '\\Draft'],
    ][i % 5] as string[];
  await appendMessages(
    user,
    'INBOX',
    fx.slice(0, 40).map((raw, i) => ({ raw, flags: flagsOf(i), internalDate: date(i) })),
  );
  await appendMessages(
    user,
    'Projets/Été 2024',
    fx.slice(40, 60).map((raw, i) => ({ raw, flags: flagsOf(i + 1), internalDate: date(i + 40) })),
  );
  await appendMessages(
    user,
    'Projets/Été 2024',
    nastyMessages({ bigMB: 3 }).map((n, i) => ({
      raw: n.raw,
      flags: ['\\Seen', `Nasty${i}`],
      internalDate: date(i + 60),
    })),
  );
  await appendMessages(user, '顧客', [{ raw: fx[60]!, flags: ['$Label1'], internalDate: date(61) }]);
  await appendMessages(
    user,
    'A&B',
    fx.slice(61, 63).map((raw, i) => ({ raw, internalDate: date(62 + i) })),
  );
  await appendMessages(
    user,
    'Sent',
    fx.slice(63).map((raw, i) => ({ raw, flags: ['\\Seen'], internalDate: date(64 + i) })),
  );
  await appendMessages(user, 'Trash', [
    { raw: fx[5]!, flags: ['\\Deleted', '\\Seen'], internalDate: date(99) },
  ]);
  original = await serverState(user);

  repo = await Repository.init(new LocalDirStore(join(work, 'repo')), 'export test password', {
    kdf: TEST_KDF,
  });
  const r = await runBackup(repo, {
    endpoint: endpoint(),
    users: [{ user: user.user }],
    tenant: TENANT,
    toolVersion: 'test',
  });
  expect(r.status).toBe('complete');
  snapshotId = r.snapshotId as string;
});

afterAll(async () => {
  await closeRepository(repo);
  const env = process.env; // MAILARK_TEST_KEEP=1 keeps the served trees, as global-setup keeps its own
  if (servedBase !== undefined && env.MAILARK_TEST_KEEP !== '1')
    rmSync(servedBase, { recursive: true, force: true });
});

/** Every folder and message of a user on any IMAP server (the same shape as serverState). */
async function stateOn(
  port: number,
  login: string,
  password: string,
): Promise<Array<ServerFolder & { subscribed: boolean }>> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    doSTARTTLS: false,
    logger: false,
    auth: { user: login, pass: password },
  });
  await client.connect();
  try {
    const out: Array<ServerFolder & { subscribed: boolean }> = [];
    const listed = (await client.list()).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const f of listed) {
      const selectable = ![...f.flags].some((x) => /^\\(noselect|nonexistent)$/i.test(x));
      const folder: ServerFolder & { subscribed: boolean } = {
        path: f.path,
        delimiter: f.delimiter,
        selectable,
        messages: [],
        subscribed: f.subscribed === true,
      };
      if (selectable) {
        const box = await client.mailboxOpen(f.path, { readOnly: true });
        folder.uidValidity = String(box.uidValidity);
        if (box.exists > 0) {
          for await (const m of client.fetch(
            '1:*',
            { uid: true, flags: true, internalDate: true, size: true, source: true },
            { uid: true },
          )) {
            const { flags, keywords } = splitFlags(m.flags ?? []);
            folder.messages.push({
              uid: m.uid,
              sha256: sha256(m.source!),
              flags,
              keywords,
              internalDate: new Date(m.internalDate ?? 0).toISOString(),
              size: m.size ?? 0,
            });
          }
          folder.messages.sort((a, b) => a.uid - b.uid);
        }
        await client.mailboxClose();
      }
      out.push(folder);
    }
    return out;
  } finally {
    await client.logout();
  }
}

/**
 * A directory Dovecot's unprivileged processes can traverse (the run's tmpRoot is private, mode 0700):
 * served Maildir trees and fresh Dovecot instances live here; removed after the file's tests.
 */
let servedBase: string | undefined;
function servedDir(prefix: string): string {
  servedBase ??= mkdtempSync(join(tmpdir(), 'mailark-served-'));
  chmodSync(servedBase, 0o755);
  const dir = mkdtempSync(join(servedBase, prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** A fresh Dovecot serving `mailRoot/<tenant>/<user>/Maildir` as the user's mail. */
async function serve(mailRoot: string, users: string[], extraConf?: string): Promise<DovecotInstance> {
  const dv = await startDovecot({
    dir: servedDir('dv-'),
    mailRoot,
    mailLocation: `maildir:{root}/${TENANT}/%u/Maildir`,
    users,
    userPassword: 'served-secret',
    autoSpecialUse: false,
  });
  if (extraConf !== undefined) {
    appendFileSync(dv.conf, `\n${extraConf}\n`);
    const r = spawnSync('doveadm', ['-c', dv.conf, 'reload'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    await new Promise((res) => setTimeout(res, 1500));
  }
  return dv;
}

function manifestOf(dir: string): ManifestLine[] {
  return readFileSync(join(dir, 'manifest.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ManifestLine);
}

describe('export of a real mailbox', () => {
  let tree: string;
  let archive: string;

  beforeAll(async () => {
    archive = join(work, 'tenant.tar.gz');
    const s = await exportSnapshot(archive);
    expect(s.counts.messages).toBe(original.reduce((n, f) => n + f.messages.length, 0));
    const t = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
    tree = servedDir('unpacked-');
    const x = spawnSync('tar', ['-xzf', archive, '-C', tree], { encoding: 'utf8' });
    expect(x.status, x.stderr).toBe(0);
  });

  it('the Maildir tree, served by a fresh Dovecot, is the original mailbox: bytes, flags, keywords, dates, UIDs, folders', async () => {
    // Dovecot writes to what it serves (uidlist GUIDs, indexes): serve a copy of its own.
    const served = servedDir('served-');
    const x = spawnSync('tar', ['-xzf', archive, '-C', served], { encoding: 'utf8' });
    expect(x.status, x.stderr).toBe(0);
    const dv = await serve(served, [user.user]);
    try {
      const state = await stateOn(dv.port, user.user, 'served-secret');
      const want = original.filter((f) => f.selectable);
      expect(state.filter((f) => f.selectable).map((f) => f.path)).toEqual(want.map((f) => f.path));
      expect(state.map((f) => f.path)).toEqual(expect.arrayContaining(['Projets/Été 2024', '顧客', 'A&B']));
      for (const f of want) {
        const g = state.find((x) => x.path === f.path)!;
        expect(g.uidValidity, f.path).toBe(f.uidValidity);
        expect(g.messages, f.path).toEqual(f.messages);
      }
      const subscribed = state.filter((f) => f.subscribed).map((f) => f.path);
      expect(subscribed).toEqual(
        expect.arrayContaining(['Projets/Été 2024', '顧客', 'A&B', 'Sent', 'Trash']),
      );
    } finally {
      await dv.stop();
    }
  });

  it("Python's mailbox module reads every mbox, and mboxrd unquoting gives the exact bytes", () => {
    const manifest = manifestOf(tree);
    const byFile = new Map<string, ManifestLine[]>();
    for (const m of manifest) byFile.set(m.paths.mbox!, [...(byFile.get(m.paths.mbox!) ?? []), m]);
    const script = String.raw`
import hashlib, json, mailbox, re, sys
jobs = json.load(sys.stdin)
out = {}
for path, sizes in jobs.items():
    box = mailbox.mbox(path, create=False)
    shas = []
    for key, size in zip(box.keys(), sizes):
        raw = box.get_bytes(key)                            # the message, From_ line removed
        raw = re.sub(rb'(?m)^>(>*From )', rb'\1', raw)      # mboxrd: one '>' less on /^>+From /
        if len(raw) == size + 1 and raw.endswith(b'\n'):    # no final line break: cut at manifest size
            raw = raw[:size]
        shas.append(hashlib.sha256(raw).hexdigest())
    out[path] = {'count': len(box.keys()), 'sha256': shas}
print(json.dumps(out))
`;
    const jobs = Object.fromEntries([...byFile].map(([p, ms]) => [join(tree, p), ms.map((m) => m.size)]));
    const r = spawnSync('python3', ['-c', script], { input: JSON.stringify(jobs), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as Record<string, { count: number; sha256: string[] }>;
    for (const [p, ms] of byFile) {
      expect(got[join(tree, p)]?.count, p).toBe(ms.length);
      expect(got[join(tree, p)]?.sha256, p).toEqual(ms.map((m) => m.sha256));
    }
    // ...and those are the server's bytes.
    const serverShas = original.flatMap((f) => f.messages.map((m) => m.sha256)).sort();
    expect(manifest.map((m) => m.sha256).sort()).toEqual(serverShas);
    expect(manifest.filter((m) => m.folder === 'Projets/Été 2024').some((m) => m.size > 3_000_000)).toBe(
      true,
    );
  });

  it('SHA256SUMS checks out with sha256sum, and verify-export passes', async () => {
    const c = spawnSync('sha256sum', ['-c', '--quiet', '--strict', 'SHA256SUMS'], {
      cwd: tree,
      encoding: 'utf8',
    });
    expect(c.status, c.stdout + c.stderr).toBe(0);
    for (const p of [archive, tree]) {
      const v = await verifyExport(p, repo, { tmpDir: work });
      expect(v.differences).toEqual([]);
      expect(v.ok).toBe(true);
    }
  });

  it('a zip export passes unzip -t and verify-export; a damaged entry is named', async () => {
    const zip = join(work, 'tenant.zip');
    await exportSnapshot(zip, { formats: ['eml', 'mbox'] });
    const t = spawnSync('unzip', ['-tq', zip], { encoding: 'utf8' });
    expect(t.status, t.stdout + t.stderr).toBe(0);
    expect((await verifyExport(zip, repo, { tmpDir: work })).ok).toBe(true);
    const bytes = readFileSync(zip);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] as number) ^ 0xff;
    const bad = join(work, 'damaged.zip');
    writeFileSync(bad, bytes);
    const v = await verifyExport(bad, repo, { tmpDir: work });
    expect(v.ok).toBe(false);
    expect(v.differences[0]?.path).toMatch(
      new RegExp(`^${TENANT}/${user.user.replace('.', '\\.')}/(eml|mbox)/`),
    );
  });

  it('an export straight from the live server is the same export', async () => {
    const out = join(work, 'live-dir');
    const source = new ImapExportSource({
      endpoint: endpoint(),
      users: [{ user: user.user }],
      tenant: TENANT,
    });
    const s = await exportTenant(source, await openArchiveSink(out, { tmpDir: work }), { tmpDir: work });
    expect(s.origin.kind).toBe('imap');
    const v = await verifyExport(out, repo, { snapshot: snapshotId, tmpDir: work });
    expect(v.differences).toEqual([]);
    // The server still has every message unread: the export used BODY.PEEK.
    expect(await serverState(user)).toEqual(original);
  });
});

describe('folder names only listescape can hold', () => {
  it('"v1.2", "v1.2/sub.3", "a\\b", "~x" and "Été.bis" survive a round trip through Dovecot with listescape', async () => {
    const mem = await Repository.init(new MemoryStore(), 'pw', { kdf: TEST_KDF });
    const u = 'names@example.test';
    const msg = (s: string) => ({
      raw: Buffer.from(`Subject: ${s}\r\n\r\n${s}\r\n`),
      flags: ['\\Seen'],
      keywords: ['Kw'],
    });
    const id = await saveExportTestSnapshot(mem, TENANT, {
      [u]: [
        { path: 'INBOX', messages: [msg('inbox')] },
        { path: 'v1.2', messages: [msg('dot')] },
        { path: 'v1.2/sub.3', messages: [msg('nested dot')] },
        { path: 'a\\b', messages: [msg('backslash')] },
        { path: '~x', messages: [msg('tilde')] },
        { path: 'Été.bis', messages: [msg('unicode and dot')] },
      ],
    });
    const { snapshot } = await mem.resolveSnapshot(id);
    const root = servedDir('names-');
    await exportTenant(
      new SnapshotExportSource(mem, id, snapshot),
      await openArchiveSink(join(root, 'x'), { tmpDir: work }),
      {
        formats: ['maildir'],
        tmpDir: work,
      },
    );
    const dv = await serve(join(root, 'x'), [u], 'mail_plugins = $mail_plugins listescape');
    try {
      const served = await stateOn(dv.port, u, 'served-secret');
      expect(
        served.filter((f) => f.messages.length > 0).map((f) => [f.path, f.messages[0]?.keywords]),
      ).toEqual(
        [['INBOX'], ['a\\b'], ['v1.2'], ['v1.2/sub.3'], ['~x'], ['Été.bis']]
          .map(([p]) => [p, ['Kw']])
          .sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1)),
      );
    } finally {
      await dv.stop();
    }
  });
});

describe('export to S3', () => {
  const s3 = () => inject('s3');
  const client = () =>
    new S3Client({
      endpoint: s3().endpoint,
      region: s3().region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3().accessKeyId, secretAccessKey: s3().secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });

  it('streams the archive as a multipart upload whose object is the archive', async () => {
    const key = `${freshPrefix()}acme.tar`;
    const c = client();
    try {
      const sink = await openArchiveSink(`s3://${s3().bucket}/${key}`, {
        tmpDir: work,
        s3: { client: c, expectedBytes: 1 },
      });
      const { snapshot } = await repo.resolveSnapshot(snapshotId);
      const sum = await exportTenant(new SnapshotExportSource(repo, snapshotId, snapshot), sink, {
        tmpDir: work,
      });
      expect(sum.archive.location).toBe(`s3://${s3().bucket}/${key}`);
      expect(sum.archive.bytes).toBeGreaterThan(8 * 1024 * 1024); // 8 MiB parts (expectedBytes 1): multipart
      const got = await c.send(new GetObjectCommand({ Bucket: s3().bucket, Key: key }));
      const body = Buffer.from(await got.Body!.transformToByteArray());
      expect(body.length).toBe(sum.archive.bytes);
      expect(createHash('sha256').update(body).digest('hex')).toBe(sum.archive.sha256);
      const file = join(work, 'from-s3.tar');
      writeFileSync(file, body);
      expect((await verifyExport(file, repo, { tmpDir: work })).ok).toBe(true);
    } finally {
      c.destroy();
    }
  });

  it('an upload that fails mid-way is aborted, reported, and leaves no object', async () => {
    const key = `${freshPrefix()}broken.tar`;
    const c = client();
    let parts = 0;
    c.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand' && ++parts >= 2)
          throw new Error('connection reset by peer (injected)');
        return next(args);
      },
      { step: 'initialize', name: 'failSecondPart' },
    );
    try {
      const reporter = new RecordingReporter();
      const sink = await openArchiveSink(`s3://${s3().bucket}/${key}`, {
        tmpDir: work,
        reporter,
        s3: { client: c, expectedBytes: 1 },
      });
      const { snapshot } = await repo.resolveSnapshot(snapshotId);
      const err = await exportTenant(new SnapshotExportSource(repo, snapshotId, snapshot), sink, {
        tmpDir: work,
        reporter,
      }).catch((e) => e);
      expect(isMailarkError(err)).toBe(true);
      expect(err.message).toContain(key);
      const head = await c.send(new HeadObjectCommand({ Bucket: s3().bucket, Key: key })).catch((e) => e);
      expect(head.$metadata?.httpStatusCode ?? head.name).toSatisfy(
        (x: unknown) => x === 404 || x === 'NotFound',
      );
      // mailark aborted the multipart upload, or (s3rver has no AbortMultipartUpload) said how to.
      const said = reporter.logs.map((l) => l.message).join('\n');
      expect(said).toMatch(
        /aborted the multipart upload|could not abort the multipart upload.*abort-multipart-upload --bucket/,
      );
      expect(readdirSync(work).filter((n) => n.startsWith('.mailark-spool'))).toEqual([]);
    } finally {
      c.destroy();
    }
  });
});
