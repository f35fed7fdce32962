// The IMAP source (packages/core/src/imap) against the harness Dovecot: login forms and their
// refusals, folders, exact bytes, flags, CONDSTORE/QRESYNC, large messages, reconnects.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { MailboxSession } from '../packages/core/src/imap/imap-session.js';
import {
  type ImapEndpoint,
  type ImapEndpointOptions,
  isMailarkError,
  MailarkError,
  openMailbox,
  parseImapEndpoint,
  RecordingReporter,
} from '../packages/core/src/index.js';
import { startDovecot } from '../scripts/lib/dovecot.mjs';
import {
  appendMessages,
  fixtureMessages,
  imapClientFor,
  imapServer,
  nastyMessages,
  newUser,
  serverState,
  sha256,
} from './harness/fixtures.js';

function endpoint(opts: ImapEndpointOptions = {}): ImapEndpoint {
  const s = imapServer();
  return parseImapEndpoint(s.url, { adminUser: s.masterUser, password: s.masterPassword, ...opts });
}

const open: MailboxSession[] = [];
async function session(user: string, opts: ImapEndpointOptions = {}, reporter?: RecordingReporter) {
  const s = await openMailbox(endpoint(opts), user, reporter ? { reporter } : {});
  open.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function refusal(p: Promise<unknown>): Promise<MailarkError> {
  try {
    const s = await p;
    if (s && typeof s === 'object' && 'close' in s) await (s as MailboxSession).close();
  } catch (err) {
    expect(err).toBeInstanceOf(MailarkError);
    return err as MailarkError;
  }
  throw new Error('expected a refusal, got a session');
}

const mail = (id: string, body = 'hello') =>
  Buffer.from(
    `From: a@example.test\r\nTo: b@example.test\r\nSubject: ${id}\r\nMessage-ID: <${id}@example.test>\r\n` +
      `Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\n${body}\r\n`,
  );

describe('login', () => {
  it('opens the target mailbox through SASL PLAIN authzid and reports the capabilities', async () => {
    const u = newUser('login');
    await appendMessages(u, 'INBOX', [{ raw: mail('only-mine') }]);
    const s = await session(u.user);
    expect(s.user).toBe(u.user);
    expect(s.identity.verifiedBy).toBe('sasl-authzid');
    expect(s.capabilities).toEqual({
      condstore: true,
      qresync: true,
      listStatus: true,
      uidplus: true,
      specialUse: true,
      move: true,
    });
    const inbox = await s.listMessages('INBOX');
    expect(inbox.messages).toHaveLength(1); // the user's own INBOX, not the admin's or another's
  });

  it('opens it through the master-user separator login "user*admin"', async () => {
    const u = newUser('login');
    await appendMessages(u, 'INBOX', [{ raw: mail('sep') }]);
    const s = await session(u.user, { auth: 'master-separator' });
    expect(s.identity.verifiedBy).toBe('master-login');
    expect((await s.listMessages('INBOX')).messages).toHaveLength(1);
  });

  it("opens it with the user's own password", async () => {
    const u = newUser('login');
    const s = await openMailbox(parseImapEndpoint(imapServer().url), u.user, { userPassword: u.password });
    open.push(s);
    expect(s.identity.verifiedBy).toBe('user-login');
  });

  it('refuses a wrong password, for the user and for the master (IMAP_AUTH, never retried)', async () => {
    const u = newUser('login');
    const wrongUser = await refusal(
      openMailbox(parseImapEndpoint(imapServer().url), u.user, { userPassword: 'nope' }),
    );
    expect(wrongUser.code).toBe('IMAP_AUTH');
    const wrongMaster = await refusal(openMailbox(endpoint({ password: 'not-the-master-password' }), u.user));
    expect(wrongMaster.code).toBe('IMAP_AUTH');
    expect(wrongMaster.hint).toMatch(/admin/);
    expect(wrongMaster.message).not.toContain('not-the-master-password');
  });

  it('refuses a mistyped user in both master forms: never opens another mailbox', async () => {
    const u = newUser('login');
    const typo = u.user.replace('@', 'x@');
    for (const auth of ['authzid', 'master-separator'] as const) {
      const err = await refusal(openMailbox(endpoint({ auth }), typo));
      expect(err.code, auth).toBe('IMAP_AUTH');
      expect(err.message).toContain(typo);
    }
  });

  it('refuses an authzid login when the server lacks AUTH=PLAIN instead of falling back to LOGIN', async () => {
    const dv = await startDovecot({ authMechanisms: 'login' });
    try {
      dv.addUser('solo@example.test');
      const ep = parseImapEndpoint(`imap://${dv.host}:${dv.port}`, {
        adminUser: dv.masterUser,
        password: dv.masterPassword,
      });
      const err = await refusal(openMailbox(ep, 'solo@example.test'));
      expect(err.code).toBe('IMAP_AUTH');
      expect(err.message).toContain('AUTH=PLAIN');
      // The master-separator form still works on such a server.
      const s = await openMailbox({ ...ep, auth: 'master-separator' }, 'solo@example.test');
      await s.close();
    } finally {
      await dv.stop();
    }
  });

  it('fails with IMAP_CONNECT when STARTTLS is required but not offered, or nothing listens', async () => {
    const u = newUser('login');
    const tls = await refusal(openMailbox(endpoint({ tls: 'require' }), u.user));
    expect(tls.code).toBe('IMAP_CONNECT');
    const closed = await refusal(
      openMailbox(parseImapEndpoint('imap://127.0.0.1:1', { password: 'x' }), u.user),
    );
    expect(closed.code).toBe('IMAP_CONNECT');
    expect(closed.hint).toMatch(/reachable|running/);
  });
});

describe('TLS', () => {
  it('verifies the certificate on STARTTLS and imaps, unless told to trust it or not to check', async () => {
    const dv = await startDovecot({ tls: true });
    try {
      dv.addUser('tls@example.test');
      const base = { adminUser: dv.masterUser, password: dv.masterPassword };
      const starttls = parseImapEndpoint(`imap://${dv.host}:${dv.port}`, { ...base, tls: 'require' });
      const err = await refusal(openMailbox(starttls, 'tls@example.test'));
      expect(err.code).toBe('IMAP_CONNECT');
      expect(err.hint).toMatch(/certificate/);

      const ca = readFileSync(dv.certFile!, 'utf8');
      const trusted = await openMailbox(
        parseImapEndpoint(`imap://${dv.host}:${dv.port}`, { ...base, ca }),
        'tls@example.test',
      );
      await trusted.close();

      const reporter = new RecordingReporter();
      const imaps = parseImapEndpoint(`imaps://${dv.host}:${dv.tlsPort}`, { ...base, insecure: true });
      const s = await openMailbox(imaps, 'tls@example.test', { reporter });
      expect((await s.listFolders()).map((f) => f.path)).toContain('INBOX');
      await s.close();
      expect(reporter.logs.some((l) => l.level === 'warn' && /not verified/.test(l.message))).toBe(true);
    } finally {
      await dv.stop();
    }
  });
});

describe('folders', () => {
  it('lists non-ASCII, nested and special-use folders with their wire names; CREATE is idempotent', async () => {
    const u = newUser('folders');
    const s = await session(u.user);
    for (const path of ['Projets/Été 2024', '顧客', 'A&B']) {
      await s.createFolder(path);
      await s.createFolder(path);
    }
    const folders = await s.listFolders();
    const by = new Map(folders.map((f) => [f.path, f]));
    expect(folders.map((f) => f.path)).toEqual([
      'A&B',
      'Archive',
      'Drafts',
      'INBOX',
      'Junk',
      'Projets',
      'Projets/Été 2024',
      'Sent',
      'Trash',
      '顧客',
    ]);
    expect(by.get('Projets/Été 2024')).toMatchObject({
      rawPath: 'Projets/&AMk-t&AOk- 2024',
      delimiter: '/',
      selectable: true,
      subscribed: true,
    });
    expect(by.get('顧客')?.rawPath).toBe('&mGdbog-');
    expect(by.get('A&B')?.rawPath).toBe('A&-B');
    expect(by.get('Projets')).toMatchObject({ selectable: false });
    expect(by.get('Projets')?.flags).toContain('\\Noselect');
    expect(by.get('Sent')?.specialUse).toBe('\\Sent');
    expect(by.get('Trash')?.specialUse).toBe('\\Trash');
    expect(by.get('INBOX')?.specialUse).toBeUndefined();
    expect(folders.every((f) => [...f.flags].sort().join() === f.flags.join())).toBe(true);

    await appendMessages(u, '顧客', [{ raw: mail('k1') }, { raw: mail('k2') }]);
    const status = await s.statusAll();
    expect([...status.keys()].sort()).toEqual(
      folders
        .filter((f) => f.selectable)
        .map((f) => f.path)
        .sort(),
    );
    expect(status.get('顧客')).toMatchObject({ messages: 2, uidNext: 3 });
    expect(status.get('顧客')?.highestModseq).toMatch(/^\d+$/);
    expect((await s.statusAll(['A&B'])).get('A&B')).toMatchObject({ messages: 0 });
    // LIST-STATUS (RFC 5819): the same folders and the same statuses from ONE command.
    const both = await s.listFoldersWithStatus();
    expect(both.folders).toEqual(await s.listFolders());
    expect(both.statuses).toEqual(await s.statusAll());
  });
});

describe('messages', () => {
  it('APPENDs flags, keywords and internal date, and reads back the exact bytes without setting \\Seen', async () => {
    const u = newUser('msg');
    const s = await session(u.user);
    await s.createFolder('Projets/Été 2024');
    const raws = fixtureMessages().slice(0, 6);
    const date = new Date('2022-02-03T04:05:06Z');
    const outcomes = [];
    for (const [i, raw] of raws.entries()) {
      const flags = i === 0 ? ['\\Flagged', '\\Answered', '$Forwarded', 'Important'] : [];
      outcomes.push(await s.append('Projets/Été 2024', raw, flags, date));
    }
    expect(outcomes.map((o) => o.uid)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(outcomes.every((o) => o.refusedFlags.length === 0)).toBe(true);

    const listing = await s.listMessages('Projets/Été 2024');
    expect(listing.status).toMatchObject({ messages: 6, uidNext: 7, uidValidity: outcomes[0]?.uidValidity });
    expect(listing.messages[0]?.flags).toEqual(['$Forwarded', 'Important', '\\Answered', '\\Flagged']);
    expect(listing.messages[0]?.modseq).toMatch(/^\d+$/);

    const fetched = [];
    for await (const m of s.fetchMessages('Projets/Été 2024', [6, 1, 2, 3, 4, 5, 99])) fetched.push(m);
    expect(fetched.map((m) => m.uid)).toEqual([1, 2, 3, 4, 5, 6]); // sorted; UID 99 does not exist
    fetched.forEach((m, i) => {
      expect(sha256(m.body)).toBe(sha256(raws[i]!));
      expect(m.size).toBe(raws[i]!.length);
      expect(m.internalDate.toISOString()).toBe(date.toISOString());
    });
    // BODY.PEEK[] never sets \Seen (RFC 3501 §6.4.5): the server still has every message unseen.
    const state = (await serverState(u)).find((f) => f.path === 'Projets/Été 2024')!;
    expect(state.messages.every((m) => !m.flags.includes('\\Seen'))).toBe(true);
    expect(state.messages[0]).toMatchObject({
      flags: ['\\Answered', '\\Flagged'],
      keywords: ['$Forwarded', 'Important'],
    });
  });

  it('reports CHANGEDSINCE changes and QRESYNC VANISHED expunges', async () => {
    const u = newUser('condstore');
    await appendMessages(u, 'INBOX', [
      { raw: mail('c1') },
      { raw: mail('c2') },
      { raw: mail('c3') },
      { raw: mail('c4') },
    ]);
    const s = await session(u.user);
    const before = await s.listMessages('INBOX');
    const modseq = before.status.highestModseq!;
    expect(modseq).toMatch(/^\d+$/);
    expect((await s.listMessages('INBOX', { changedSince: modseq })).messages).toEqual([]);

    const c = await imapClientFor(u);
    await c.mailboxOpen('INBOX');
    await c.messageFlagsAdd('2', ['\\Seen', 'Later'], { uid: true });
    await c.messageDelete('3', { uid: true });
    await c.logout();

    const changes = await s.listMessages('INBOX', { changedSince: modseq });
    expect(changes.messages.map((m) => m.uid)).toEqual([2]);
    expect(changes.messages[0]?.flags).toEqual(['Later', '\\Seen']);
    expect(BigInt(changes.messages[0]!.modseq!)).toBeGreaterThan(BigInt(modseq));
    expect(changes.vanished).toEqual([3]);
    expect(changes.status.messages).toBe(3);
  });

  it('matches messages by Message-ID and reads their metadata without bodies', async () => {
    const u = newUser('meta');
    const date = new Date('2021-05-06T07:08:09Z');
    await appendMessages(u, 'INBOX', [
      { raw: mail('needle'), internalDate: date, flags: ['\\Seen'] },
      { raw: mail('needle-2') }, // "needle" is a substring of its Message-ID: not a match
      { raw: mail('needle', 'same id, other bytes') },
    ]);
    const s = await session(u.user);
    const meta = await s.fetchMeta('INBOX', [1, 2, 3]);
    expect(meta.map((m) => m.messageId)).toEqual([
      'needle@example.test',
      'needle-2@example.test',
      'needle@example.test',
    ]);
    expect(meta[0]).toMatchObject({ uid: 1, size: mail('needle').length, flags: ['\\Seen'] });
    expect(meta[0]?.internalDate.toISOString()).toBe(date.toISOString());
    const found = await s.fetchByMessageId('INBOX', '<needle@example.test>');
    expect(found).toEqual([
      { uid: 1, size: mail('needle').length, sha256: sha256(mail('needle')) },
      {
        uid: 3,
        size: mail('needle', 'same id, other bytes').length,
        sha256: sha256(mail('needle', 'same id, other bytes')),
      },
    ]);
  });

  it('serves a bare-LF message with CRLF, and the size it announces', async () => {
    const u = newUser('lf');
    const lf = nastyMessages().find((n) => n.name === 'bare-lf')!;
    const s = await session(u.user);
    await s.append('INBOX', lf.raw, [], new Date());
    const [m] = await collect(s.fetchMessages('INBOX', [1]));
    const crlf = Buffer.from(lf.raw.toString('latin1').replaceAll('\n', '\r\n'), 'latin1');
    expect(Buffer.from(m!.body).equals(crlf)).toBe(true);
    expect(m!.size).toBe(crlf.length);
  });

  it('fetches a 25 MB message in pieces, byte-identical, with bounded memory', async () => {
    const u = newUser('big');
    const big = nastyMessages({ bigMB: 25 }).find((n) => n.name === 'big')!;
    await appendMessages(u, 'INBOX', [
      { raw: mail('small-before') },
      { raw: big.raw },
      { raw: mail('small-after') },
    ]);
    const reporter = new RecordingReporter();
    const s = await session(u.user, {}, reporter);
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const got: Array<{ uid: number; sha: string; size: number }> = [];
    for await (const m of s.fetchMessages('INBOX', [1, 2, 3])) {
      peak = Math.max(peak, process.memoryUsage().rss);
      got.push({ uid: m.uid, sha: sha256(m.body), size: m.size });
    }
    expect(got.map((g) => g.uid)).toEqual([1, 2, 3]);
    expect(got[1]).toEqual({ uid: 2, sha: sha256(big.raw), size: big.raw.length });
    expect(s.stats.chunkedMessages).toBe(1);
    expect(reporter.logs.some((l) => /UID 2 .* in 7 pieces/.test(l.message))).toBe(true);
    // Loose: one message buffer plus a piece in flight, far from several copies of 25 MB.
    expect(peak - rssBefore).toBeLessThan(160 * 1024 * 1024);
  });

  it('streams a 25 MB message as its pieces, and small ones whole', async () => {
    const u = newUser('bigstream');
    const big = nastyMessages({ bigMB: 25 }).find((n) => n.name === 'big')!;
    await appendMessages(u, 'INBOX', [
      { raw: mail('small-before') },
      { raw: big.raw },
      { raw: mail('small-after') },
    ]);
    const s = await session(u.user);
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const got: Array<{ uid: number; sha: string; size: number; pieces: number }> = [];
    for await (const m of s.streamMessages('INBOX', [1, 2, 3])) {
      if (m.body instanceof Uint8Array) {
        got.push({ uid: m.uid, sha: sha256(m.body), size: m.size, pieces: 0 });
        continue;
      }
      const hash = createHash('sha256');
      let pieces = 0;
      for await (const piece of m.body) {
        expect(piece.length).toBeLessThanOrEqual(4 * 1024 * 1024);
        hash.update(piece);
        pieces++;
        peak = Math.max(peak, process.memoryUsage().rss);
      }
      got.push({ uid: m.uid, sha: hash.digest('hex'), size: m.size, pieces });
    }
    expect(got.map((g) => [g.uid, g.pieces])).toEqual([
      [1, 0],
      [2, 7],
      [3, 0],
    ]);
    expect(got[1]).toMatchObject({ sha: sha256(big.raw), size: big.raw.length });
    expect(s.stats.chunkedMessages).toBe(1);
    // Two pieces (one being read, one fetched ahead) and imapflow's parse of one: never the 25 MB.
    expect(peak - rssBefore).toBeLessThan(80 * 1024 * 1024);
  });

  it('reconnects after the server drops the session and carries on', async () => {
    const dv = inject('dovecot');
    const u = newUser('drop');
    await appendMessages(u, 'INBOX', [{ raw: mail('d1') }, { raw: mail('d2') }]);
    const reporter = new RecordingReporter();
    const s = await session(u.user, {}, reporter);
    expect((await s.listMessages('INBOX')).messages).toHaveLength(2);
    const kick = spawnSync('doveadm', ['-c', dv.conf!, 'kick', u.user], { encoding: 'utf8' });
    expect(kick.status, kick.stderr).toBe(0);
    const [first] = await collect(s.fetchMessages('INBOX', [1]));
    expect(sha256(first!.body)).toBe(sha256(mail('d1')));
    expect(s.stats.reconnects).toBe(1);
    expect(reporter.logs.some((l) => l.level === 'warn' && /retrying/.test(l.message))).toBe(true);
  });

  it('reports refusals as IMAP_PROTOCOL with the server text', async () => {
    const u = newUser('no');
    const s = await session(u.user);
    const err = await s.listMessages('Does/Not/Exist').catch((e: unknown) => e);
    expect(isMailarkError(err, 'IMAP_PROTOCOL')).toBe(true);
    expect((err as MailarkError).hint).toMatch(/does not exist/);
  });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
