/**
 * find and restore against the real Dovecot, on snapshots made by the real backup engine:
 * "Alice deleted the invoice from Bob this morning, and her folder Clients/Été is gone too."
 * Back up, delete, back up again; find what went (by Message-ID, subject, sender and date,
 * deleted-since); restore it (byte-identical, same flags, keywords and internal date, folders
 * recreated), twice (no duplicate), into another user, as .eml; and the ways it can go wrong.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../packages/cli/src/main.js';
import { runBackup } from '../packages/core/src/backup/run-backup.js';
import {
  findMessages,
  type ImapEndpoint,
  imapRestoreConnector,
  type LocatedMessage,
  type MessageMatch,
  openMailbox,
  parseImapEndpoint,
  parseMessageQuery,
  Repository,
  type RestoreConnector,
  resolveMessageRef,
  restoreMessages,
} from '../packages/core/src/index.js';
import { saveTestSnapshot, TEST_KDF } from '../packages/core/src/repo/test-repository.js';
import { LocalDirStore } from '../packages/core/src/store/local-dir-store.js';
import { startDovecot } from '../scripts/lib/dovecot.mjs';
import {
  appendMessages,
  closeRepository,
  fixtureMessages,
  imapClientFor,
  imapServer,
  newUser,
  type ServerFolder,
  serverState,
  sha256,
  tempDir,
} from './harness/fixtures.js';

const PASSWORD = 'restore test repository password';
const TENANT = 'example.test';

function endpoint(): ImapEndpoint {
  const s = imapServer();
  return parseImapEndpoint(s.url, { adminUser: s.masterUser, password: s.masterPassword });
}

async function backup(repo: Repository, users: string[]): Promise<string> {
  const r = await runBackup(repo, {
    endpoint: endpoint(),
    users: users.map((user) => ({ user })),
    tenant: TENANT,
    toolVersion: 'test',
  });
  expect(r.status).toBe('complete');
  return r.snapshotId as string;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real CLI, in-process; the IMAP and repository passwords come from the environment. */
async function cli(repoDir: string, argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const s = imapServer();
  const code = await runCli(['-r', repoDir, ...argv], {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { MAILARK_PASSWORD: PASSWORD, MAILARK_IMAP_PASSWORD: s.masterPassword },
  });
  for (const secret of [PASSWORD, s.masterPassword]) expect(stdout + stderr).not.toContain(secret);
  return { code, stdout, stderr };
}

function imapArgs(): string[] {
  const s = imapServer();
  return ['--imap', s.url, '--imap-user', s.masterUser];
}

function folderOf(state: ServerFolder[], path: string): ServerFolder {
  const f = state.find((x) => x.path === path);
  if (f === undefined)
    throw new Error(`no folder ${path} on the server: ${state.map((x) => x.path).join(', ')}`);
  return f;
}

/** What a restored copy must carry: the exact bytes, flags, keywords and internal date. */
function identity(m: { sha256: string; flags: string[]; keywords: string[]; internalDate: string }) {
  return { sha256: m.sha256, flags: m.flags, keywords: m.keywords, internalDate: m.internalDate };
}

async function deleteMessage(user: string, folder: string, uid: number): Promise<void> {
  const c = await imapClientFor(user);
  try {
    await c.mailboxOpen(folder);
    await c.messageDelete(String(uid), { uid: true });
  } finally {
    await c.logout();
  }
}

async function deleteFolders(user: string, folders: string[]): Promise<void> {
  const c = await imapClientFor(user);
  try {
    for (const f of folders) await c.mailboxDelete(f);
  } finally {
    await c.logout();
  }
}

const sep = () => inject('dovecot').separator;

describe('find and restore on a real mailbox', () => {
  const tag = randomBytes(4).toString('hex');
  const invoiceId = `invoice-42.${tag}@bob.example.test`;
  const invoice = Buffer.from(
    'From: =?UTF-8?Q?Bob_Martin?= <bob@bob.example.test>\r\n' +
      'To: Alice <alice@example.test>\r\n' +
      'Subject: =?UTF-8?Q?Facture_n=C2=B0_42_=E2=80=94_=C3=89t=C3=A9?=\r\n' +
      `Message-ID: <${invoiceId}>\r\n` +
      'Date: Sat, 21 Nov 2026 08:59:00 +0100\r\n' +
      'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n' +
      'Bonjour Alice,\r\nvoici la facture.\r\n',
  );
  const invoiceDate = new Date('2026-11-21T07:59:30.000Z');
  let alice: string;
  let carol: string;
  let repoDir: string;
  let repo: Repository;
  let s1: string;
  let s2: string;
  let before: ServerFolder[];
  let clients: string;

  afterAll(() => closeRepository(repo));

  beforeAll(async () => {
    alice = newUser('alice').user;
    carol = newUser('carol').user;
    clients = `Clients${sep()}Été`;
    const fixtures = fixtureMessages();
    await appendMessages(alice, 'INBOX', [
      { raw: fixtures[0] as Buffer, flags: ['\\Seen'] },
      { raw: invoice, flags: ['\\Seen', '\\Answered', '$Forwarded', 'Important'], internalDate: invoiceDate },
      { raw: fixtures[1] as Buffer },
    ]);
    await appendMessages(alice, 'Clients', []);
    await appendMessages(alice, clients, [
      {
        raw: fixtures[2] as Buffer,
        flags: ['\\Flagged', 'Client'],
        internalDate: new Date('2026-10-02T10:00:00Z'),
      },
      { raw: fixtures[3] as Buffer, flags: ['\\Seen'], internalDate: new Date('2026-10-03T11:30:00Z') },
    ]);
    before = await serverState(alice);
    repoDir = join(tempDir('restore-repo-'), 'repo');
    repo = await Repository.init(new LocalDirStore(repoDir), PASSWORD, { kdf: TEST_KDF });
    s1 = await backup(repo, [alice]);

    // The support call: the invoice deleted from INBOX, and Clients/Été (with its parent) gone.
    const inboxInvoice = folderOf(before, 'INBOX').messages.find((m) => m.sha256 === sha256(invoice));
    await deleteMessage(alice, 'INBOX', inboxInvoice?.uid as number);
    await deleteFolders(alice, [clients, 'Clients']);
    s2 = await backup(repo, [alice]);
  });

  it('finds the deleted invoice by Message-ID, subject, and sender and date', async () => {
    const byId = parseMessageQuery({ messageId: `<${invoiceId}>` });
    expect((await findMessages(repo, byId)).matches).toEqual([]); // gone from the latest snapshot
    const all = await findMessages(repo, byId, { allSnapshots: true });
    expect(all.matches).toHaveLength(1);
    const m = all.matches[0] as MessageMatch;
    expect(m).toMatchObject({
      user: alice,
      folder: 'INBOX',
      snapshotId: s1,
      sha256: sha256(invoice),
      messageId: invoiceId,
    });
    expect(m.snapshots?.map((s) => s.id)).toEqual([s1]);

    const bySubject = await findMessages(repo, parseMessageQuery({ subject: 'FACTURE N° 42 — été' }), {
      snapshot: s1.slice(0, 8),
    });
    expect(bySubject.matches.map((x) => x.ref)).toEqual([m.ref]);
    expect(bySubject.matches[0]?.subject).toBe('Facture n° 42 — Été');

    const bySender = await findMessages(
      repo,
      parseMessageQuery({ user: alice, from: 'bob martin', since: '2026-11-20', until: '2026-11-22' }),
      { snapshot: s1 },
    );
    expect(bySender.matches.map((x) => x.ref)).toEqual([m.ref]);
    expect(bySender.matches[0]?.internalDate).toBe(invoiceDate.toISOString());
  });

  it('find --deleted-since lists exactly what went (CLI, --json)', async () => {
    const run = await cli(repoDir, ['find', '--user', alice, '--deleted-since', s1.slice(0, 8), '--json']);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout) as { matches: MessageMatch[]; comparedTo: { id: string } };
    expect(doc.comparedTo.id).toBe(s2);
    const gone = [
      ...folderOf(before, clients).messages.map((x) => [clients, x.sha256]),
      ['INBOX', sha256(invoice)],
    ];
    expect(doc.matches.map((x) => [x.folder, x.sha256])).toEqual(gone);
    // The human table names every reference too.
    const table = await cli(repoDir, ['find', '--user', alice, '--deleted-since', s1]);
    for (const x of doc.matches) expect(table.stdout).toContain(x.ref);
  });

  it('restores the invoice byte-identical with flags, keywords and date; a second run adds nothing', async () => {
    const [hit] = (
      await findMessages(repo, parseMessageQuery({ messageId: invoiceId }), { allSnapshots: true })
    ).matches;
    const ref = (hit as MessageMatch).ref;
    const first = await cli(repoDir, ['restore', ref, ...imapArgs()]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/restored\s/);
    const inbox = folderOf(await serverState(alice), 'INBOX');
    const copies = inbox.messages.filter((x) => x.sha256 === sha256(invoice));
    expect(copies).toHaveLength(1);
    const original = folderOf(before, 'INBOX').messages.find((x) => x.sha256 === sha256(invoice));
    expect(identity(copies[0] as (typeof copies)[0])).toEqual(
      identity(original as NonNullable<typeof original>),
    );
    expect(copies[0]?.internalDate).toBe(invoiceDate.toISOString());

    const again = await cli(repoDir, ['restore', ref, ...imapArgs(), '--json']);
    expect(again.code).toBe(0);
    const doc = JSON.parse(again.stdout) as {
      items: Array<{ status: string; uid: number }>;
      summary: { restored: number };
    };
    expect(doc.items.map((i) => [i.status, i.uid])).toEqual([['already-present', copies[0]?.uid]]);
    expect(doc.summary.restored).toBe(0);
    expect(folderOf(await serverState(alice), 'INBOX').messages).toHaveLength(inbox.messages.length);
  });

  it('restores the deleted folder Clients/Été (parents recreated) as of the first snapshot', async () => {
    const run = await cli(repoDir, [
      'restore',
      '--user',
      alice,
      '--folder',
      `Clients${sep()}Été`,
      '--snapshot',
      s1,
      ...imapArgs(),
    ]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const state = await serverState(alice);
    expect(state.map((f) => f.path)).toContain('Clients');
    const restored = folderOf(state, clients).messages.map(identity);
    expect(restored).toEqual(folderOf(before, clients).messages.map(identity));
    // Nothing else was touched: INBOX still has what it had.
    expect(
      folderOf(state, 'INBOX')
        .messages.map((m) => m.sha256)
        .sort(),
    ).toEqual(
      folderOf(before, 'INBOX')
        .messages.map((m) => m.sha256)
        .sort(),
    );
  });

  it('restores into another user and folder', async () => {
    const items = (await findMessages(repo, parseMessageQuery({ user: alice }), { deletedSince: s1 }))
      .located;
    const out = await restoreMessages(repo, imapRestoreConnector(endpoint()), items, {
      toUser: carol,
      toFolder: 'Restored 2026-11-21',
    });
    expect(out.map((o) => [o.user, o.folder, o.status])).toEqual(
      items.map(() => [carol, 'Restored 2026-11-21', 'restored']),
    );
    const got = folderOf(await serverState(carol), 'Restored 2026-11-21').messages;
    expect(got.map(identity).sort((a, b) => a.sha256.localeCompare(b.sha256))).toEqual(
      items.map((i) => identity({ ...i.entry })).sort((a, b) => a.sha256.localeCompare(b.sha256)),
    );
  });

  it('writes .eml files with the exact bytes and mtime = internal date', async () => {
    const dir = tempDir('eml-');
    const [hit] = (
      await findMessages(repo, parseMessageQuery({ messageId: invoiceId }), { allSnapshots: true })
    ).matches;
    const run = await cli(repoDir, ['restore', (hit as MessageMatch).ref, '--eml', dir, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const [item] = (JSON.parse(run.stdout) as { items: Array<{ status: string; file: string }> }).items;
    expect(item?.status).toBe('restored');
    expect(sha256(readFileSync(item?.file as string))).toBe(sha256(invoice));
    expect(statSync(item?.file as string).mtime.toISOString()).toBe(invoiceDate.toISOString());
  });

  it('refuses bad input with a clear error and changes nothing', async () => {
    const [hit] = (
      await findMessages(repo, parseMessageQuery({ messageId: invoiceId }), { allSnapshots: true })
    ).matches;
    const ref = (hit as MessageMatch).ref;
    const unknown = await cli(repoDir, [
      'restore',
      `00000000/${ref.split('/').slice(1).join('/')}`,
      ...imapArgs(),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no snapshot 00000000');

    const malformed = await cli(repoDir, ['restore', 'INBOX/42', ...imapArgs()]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('<snapshot>/<user>/<folder>/<uidvalidity>/<uid>');

    // The second snapshot no longer holds the invoice.
    const notThere = await cli(repoDir, [
      'restore',
      [s2.slice(0, 8), ...ref.split('/').slice(1)].join('/'),
      ...imapArgs(),
    ]);
    expect(notThere.code).toBe(1);
    expect(notThere.stderr).toMatch(/no message with UID \d+ in folder "INBOX"/);

    const ghost = `ghost-${tag}@example.test`;
    const noUser = await cli(repoDir, ['restore', ref, '--to-user', ghost, ...imapArgs(), '--json']);
    expect(noUser.code).toBe(1);
    const doc = JSON.parse(noUser.stdout) as { items: Array<{ status: string; error: { code: string } }> };
    expect(doc.items.map((i) => [i.status, i.error.code])).toEqual([['failed', 'IMAP_AUTH']]);
  });
});

describe('restore of a message backed up with bare LF line ends (from a server that kept them)', () => {
  it('Dovecot stores it with CRLF: verified in that form and said so; a second run finds it there', async () => {
    const erin = newUser('erin').user;
    const lf = Buffer.from('From: bob@example.test\nSubject: unix lines\n\nfirst line\nsecond line\n');
    const crlf = Buffer.from(lf.toString().replaceAll('\n', '\r\n'));
    const repo = await Repository.init(new LocalDirStore(join(tempDir('restore-lf-'), 'repo')), PASSWORD, {
      kdf: TEST_KDF,
    });
    await saveTestSnapshot(repo, { [erin]: { Archive: [lf] } }, '2026-11-20T09:15:00.000Z');
    const items = (await findMessages(repo, parseMessageQuery({ user: erin }))).located;
    expect(items.map((i) => i.entry.sha256)).toEqual([sha256(lf)]);

    const first = await restoreMessages(repo, imapRestoreConnector(endpoint()), items);
    expect(first.map((o) => [o.status, o.normalized, o.error])).toEqual([['restored', true, undefined]]);
    const [copy] = folderOf(await serverState(erin), 'Archive').messages;
    expect(copy).toMatchObject({
      sha256: sha256(crlf),
      flags: ['\\Seen'],
      internalDate: '2026-11-20T09:15:00.000Z',
    });

    const again = await restoreMessages(repo, imapRestoreConnector(endpoint()), items);
    expect(again.map((o) => [o.status, o.uid])).toEqual([['already-present', copy?.uid]]);
    expect(folderOf(await serverState(erin), 'Archive').messages).toHaveLength(1);
    await closeRepository(repo);
  });
});

describe('restore when IMAP goes down mid-way', () => {
  it('reports what was restored, and a re-run completes the rest without duplicates', async () => {
    // A private server (in its own directory, readable by Dovecot's processes), so stopping it
    // touches no other test. The directory is ours, not the launcher's: stop() then keeps it, and the
    // restarted server finds the same users and mail.
    const own = mkdtempSync(join(tmpdir(), 'mailark-dv-down-'));
    chmodSync(own, 0o755);
    let dv = await startDovecot({ dir: own });
    const { dir, port, masterUser, masterPassword, userPassword } = dv;
    try {
      const ep = parseImapEndpoint(`imap://${dv.host}:${port}`, {
        adminUser: masterUser,
        password: masterPassword,
      });
      const dave = dv.addUser(`dave-${randomBytes(3).toString('hex')}@example.test`).user;
      const msgs = fixtureMessages().slice(10, 14);
      const c = new ImapFlow({
        host: dv.host,
        port,
        secure: false,
        logger: false,
        auth: { user: dave, pass: dv.userPassword },
      });
      await c.connect();
      await c.mailboxCreate('Work').catch((e: { responseText?: string }) => {
        throw new Error(`CREATE: ${e.responseText}`);
      });
      for (const raw of msgs)
        await c.append('Work', raw, ['\\Seen']).catch((e: { responseText?: string }) => {
          throw new Error(`APPEND: ${e.responseText}`);
        });
      const repo = await Repository.init(
        new LocalDirStore(join(tempDir('restore-down-'), 'repo')),
        PASSWORD,
        {
          kdf: TEST_KDF,
        },
      );
      const r = await runBackup(repo, {
        endpoint: ep,
        users: [{ user: dave }],
        tenant: TENANT,
        toolVersion: 'test',
      });
      expect(r.status).toBe('complete');
      await c.mailboxDelete('Work').catch((e: { responseText?: string }) => {
        throw new Error(`DELETE: ${e.responseText}`);
      });
      await c.logout();
      const items: LocatedMessage[] = (await findMessages(repo, parseMessageQuery({ user: dave }))).located;
      expect(items).toHaveLength(4);

      // The server goes down just before the second APPEND.
      const real = imapRestoreConnector(ep);
      const failing: RestoreConnector = async (user) => {
        const t = await real(user);
        let appends = 0;
        return {
          ...t,
          append: async (p, body, flags, date) => {
            if (++appends === 2) {
              // The server drops the session, then stops: the reconnect finds nobody listening.
              const kick = spawnSync('doveadm', ['-c', dv.conf, 'kick', user], { encoding: 'utf8' });
              if (kick.status !== 0) throw new Error(`doveadm kick: ${kick.stderr}`);
              await dv.stop();
            }
            return t.append(p, body, flags, date);
          },
        };
      };
      const first = await restoreMessages(repo, failing, items);
      expect(first.map((o) => o.status)).toEqual(['restored', 'failed', 'failed', 'failed']);
      expect(first.slice(1).map((o) => o.error?.code)).toEqual([
        'IMAP_CONNECT',
        'IMAP_CONNECT',
        'IMAP_CONNECT',
      ]);

      dv = await startDovecot({ dir, port, masterUser, masterPassword, userPassword });
      const again = await restoreMessages(repo, imapRestoreConnector(ep), items);
      expect(again.map((o) => o.status)).toEqual(['already-present', 'restored', 'restored', 'restored']);
      // The ground truth, from the server: exactly the four messages, in order, byte-identical.
      const check = await openMailbox(ep, dave);
      const work: string[] = [];
      for await (const m of check.fetchMessages(
        'Work',
        (await check.listMessages('Work')).messages.map((x) => x.uid),
      )) {
        work.push(sha256(m.body));
      }
      await check.close();
      expect(work).toEqual(items.map((i) => i.entry.sha256));
      expect((await resolveMessageRef(repo, items[3]?.ref as string)).entry.sha256).toBe(work[3]);
      await closeRepository(repo);
    } finally {
      await dv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
