/**
 * Helpers for integration tests, on the servers global-setup.ts provides.
 *
 * Every test works as a brand-new IMAP user (newUser) and under a fresh S3 prefix (freshPrefix), so
 * tests never clean up and never see each other. serverState() is the ground truth: what the server
 * holds, read independently of mailark (its own imapflow connection), to compare snapshots, restores
 * and exports against.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import { inject } from 'vitest';
import { splitFlags } from '../../packages/core/src/mail/snapshot.js';
import type { Repository } from '../../packages/core/src/repo/repository.js';
import { addPasswdUser, maildirFor } from '../../scripts/lib/dovecot.mjs';

export interface TestUser {
  user: string;
  password: string;
}

/** A brand-new mailbox on the shared Dovecot, e.g. { user: 'backup-k3x9q2@example.test', password }. */
export function newUser(prefix = 'u'): TestUser {
  const dv = inject('dovecot');
  const user = `${prefix}-${randomBytes(5).toString('hex')}@example.test`;
  const password = randomBytes(9).toString('base64url');
  addPasswdUser(dv.usersFile, user, password);
  return { user, password };
}

/** The ImapEndpoint-style facts of the shared server, for code under test. */
export function imapServer(): {
  host: string;
  port: number;
  url: string;
  masterUser: string;
  masterPassword: string;
} {
  const dv = inject('dovecot');
  return {
    host: dv.host,
    port: dv.port,
    url: `imap://${dv.host}:${dv.port}`,
    masterUser: dv.masterUser,
    masterPassword: dv.masterPassword,
  };
}

/**
 * A connected imapflow client for seeding and asserting, logged in as `user` through the master
 * user (SASL PLAIN authzid). The caller must logout().
 */
export async function imapClientFor(user: string | TestUser): Promise<ImapFlow> {
  const dv = inject('dovecot');
  const client = new ImapFlow({
    host: dv.host,
    port: dv.port,
    secure: false,
    doSTARTTLS: false,
    logger: false,
    disableAutoIdle: true,
    auth: { user: dv.masterUser, pass: dv.masterPassword, authzid: nameOf(user), loginMethod: 'AUTH=PLAIN' },
  });
  await client.connect();
  return client;
}

export interface SeedMessage {
  raw: Uint8Array;
  /** System flags and keywords, e.g. ['\\Seen', '$Forwarded']. */
  flags?: string[];
  internalDate?: Date;
}

/** APPENDs messages (creating the folder and its parents if needed); returns their UIDs in order. */
export async function appendMessages(
  user: string | TestUser,
  folder: string,
  messages: readonly SeedMessage[],
): Promise<Array<{ uid: number; uidValidity: string }>> {
  const client = await imapClientFor(user);
  try {
    if (folder !== 'INBOX') {
      const existing = await client.list();
      if (!existing.some((f) => f.path === folder)) await client.mailboxCreate(folder);
    }
    const out: Array<{ uid: number; uidValidity: string }> = [];
    for (const [i, m] of messages.entries()) {
      const res = await client
        .append(folder, Buffer.from(m.raw), m.flags ?? [], m.internalDate)
        .catch((err: { responseText?: string; message: string }) => {
          throw new Error(`APPEND #${i} to ${folder} failed: ${err.responseText ?? err.message}`, {
            cause: err,
          });
        });
      if (!res || res.uid === undefined) throw new Error(`APPEND to ${folder} returned no UID`);
      out.push({ uid: res.uid, uidValidity: String(res.uidValidity) });
    }
    return out;
  } finally {
    await client.logout();
  }
}

export interface ServerMessage {
  uid: number;
  /** SHA-256 (hex) of BODY.PEEK[] as the server serves it. */
  sha256: string;
  /** System flags, sorted, without \Recent. */
  flags: string[];
  /** Keywords, sorted. */
  keywords: string[];
  /** ISO 8601 UTC. */
  internalDate: string;
  size: number;
}

export interface ServerFolder {
  /** Unicode path, e.g. "Projets/Été 2024". */
  path: string;
  delimiter: string;
  specialUse?: string;
  selectable: boolean;
  uidValidity?: string;
  messages: ServerMessage[];
}

/** Every folder of `user` (sorted by path) with every message (ascending UID): the ground truth. */
export async function serverState(user: string | TestUser): Promise<ServerFolder[]> {
  const client = await imapClientFor(user);
  try {
    const folders: ServerFolder[] = [];
    const listed = (await client.list()).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const f of listed) {
      const selectable = ![...f.flags].some((x) => /^\\(noselect|nonexistent)$/i.test(x));
      const folder: ServerFolder = { path: f.path, delimiter: f.delimiter, selectable, messages: [] };
      if (f.specialUse && f.specialUse !== '\\Inbox') folder.specialUse = f.specialUse;
      if (selectable) {
        const mailbox = await client.mailboxOpen(f.path, { readOnly: true });
        folder.uidValidity = String(mailbox.uidValidity);
        if (mailbox.exists > 0) {
          const q = { uid: true, flags: true, internalDate: true, size: true, source: true };
          for await (const m of client.fetch('1:*', q, { uid: true })) {
            if (!m.source) throw new Error(`no body for UID ${m.uid} in ${f.path}`);
            const { flags, keywords } = splitFlags(m.flags ?? []);
            folder.messages.push({
              uid: m.uid,
              sha256: sha256(m.source),
              flags,
              keywords,
              internalDate: new Date(m.internalDate ?? 0).toISOString(),
              size: m.size ?? m.source.length,
            });
          }
          folder.messages.sort((a, b) => a.uid - b.uid);
        }
        await client.mailboxClose();
      }
      folders.push(folder);
    }
    return folders;
  } finally {
    await client.logout();
  }
}

/** The Maildir directory of a user on the shared server (when its mail_location is known). */
export function maildirOf(user: string | TestUser): string {
  const dv = inject('dovecot');
  if (!dv.mailLocation) throw new Error('the test IMAP server has no known mail_location');
  return maildirFor(dv.mailLocation, nameOf(user));
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** Where the 75 real messages live: ../shared beside the checkout, or MAILARK_FIXTURES_DIR. */
export function fixturesDir(): string {
  const env = process.env;
  return env.MAILARK_FIXTURES_DIR ?? resolve(repoRoot, '../shared/fixtures/messages');
}

/** The byte-exact real messages of shared/fixtures/messages, with their file names, sorted by name. */
export function fixtureFiles(): Array<{ name: string; raw: Buffer }> {
  const dir = fixturesDir();
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.eml'))
    .sort();
  if (names.length === 0) throw new Error(`no .eml fixtures in ${dir}`);
  return names.map((name) => ({ name, raw: readFileSync(join(dir, name)) }));
}

/** The byte-exact real messages of shared/fixtures/messages as Buffers, sorted by file name. */
export function fixtureMessages(): Buffer[] {
  return fixtureFiles().map((f) => f.raw);
}

export interface NastyMessage {
  name: string;
  raw: Buffer;
  /** What makes it nasty, for test names. */
  why: string;
}

/**
 * Messages that break naive code. Each has a unique Message-ID (so `find` can tell them apart).
 * `bigMB` sets the size of the large message (default 2 MiB; the IMAP test uses 25).
 */
export function nastyMessages(opts: { bigMB?: number } = {}): NastyMessage[] {
  const tag = randomBytes(4).toString('hex');
  const hdr = (name: string, subject: string, extra = '') =>
    `From: Nasty Tester <nasty@example.test>\r\nTo: victim@example.test\r\nSubject: ${subject}\r\n` +
    `Message-ID: <${name}.${tag}@example.test>\r\nDate: Tue, 05 Mar 2024 10:11:12 +0100\r\n${extra}`;
  const msgs: NastyMessage[] = [];
  const add = (name: string, why: string, raw: Buffer) => msgs.push({ name, why, raw });

  add(
    'bare-lf',
    'LF-only line endings (servers normalise to CRLF)',
    Buffer.from(hdr('bare-lf', 'bare LF').replaceAll('\r\n', '\n') + '\nline one\nline two\n'),
  );
  add(
    'eight-bit-headers',
    'raw UTF-8 and Latin-1 bytes in headers (no RFC 2047)',
    Buffer.concat([
      Buffer.from(hdr('eight-bit-headers', 'Grüße aus Köln — 東京', 'X-Latin1: ')),
      Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0d, 0x0a]), // "café" in Latin-1: invalid UTF-8
      Buffer.from(
        'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCorps en 8 bits: été.\r\n',
      ),
    ]),
  );
  add(
    'nul-byte',
    'a NUL byte in the body (needs literal8 / BINARY to APPEND)',
    Buffer.concat([
      Buffer.from(hdr('nul-byte', 'NUL inside', 'Content-Type: application/octet-stream\r\n') + '\r\nbefore'),
      Buffer.from([0x00]),
      Buffer.from('after\r\n'),
    ]),
  );
  add(
    'long-lines',
    'a 100,000-byte line without a break, and a 998+ header',
    Buffer.from(
      hdr('long-lines', 'long lines', `X-Long: ${'h'.repeat(2000)}\r\n`) +
        `\r\n${'x'.repeat(100_000)}\r\nend\r\n`,
    ),
  );
  add(
    'rfc2047-subjects',
    'encoded-words: Q and B, UTF-8 and ISO-8859-1, split across folded lines',
    Buffer.from(
      hdr(
        'rfc2047-subjects',
        '=?UTF-8?B?' +
          Buffer.from('Facture n° 42 — été').toString('base64') +
          '?=\r\n =?ISO-8859-1?Q?_pay=E9e?=',
        'Cc: =?UTF-8?Q?Z=C3=B6e_=C3=9Cn=C3=AFcode?= <zoe@example.test>\r\n',
      ) + '\r\nSee subject.\r\n',
    ),
  );
  add(
    'from-lines',
    '"From " and ">From " lines in the body (mboxrd must escape and unescape exactly)',
    Buffer.from(
      hdr('from-lines', 'From lines') +
        '\r\nFrom the start of a line.\r\n>From already quoted once.\r\n>>From quoted twice.\r\n' +
        'From \r\nFromage is not a From line.\r\n',
    ),
  );
  const bigBytes = Math.round((opts.bigMB ?? 2) * 1024 * 1024);
  add('big', `a ${opts.bigMB ?? 2} MiB message (base64 attachment)`, bigMessage(hdr('big', 'big'), bigBytes));
  return msgs;
}

/** A multipart message of about `bytes` bytes: text part plus a base64 attachment of pseudo-random data. */
function bigMessage(header: string, bytes: number): Buffer {
  const boundary = `b-${randomBytes(6).toString('hex')}`;
  const head =
    header +
    `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n` +
    `--${boundary}\r\nContent-Type: text/plain\r\n\r\nAttached: data.bin\r\n` +
    `--${boundary}\r\nContent-Type: application/octet-stream\r\n` +
    'Content-Disposition: attachment; filename="data.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n';
  const tail = `\r\n--${boundary}--\r\n`;
  // base64 lines of 76 chars + CRLF carry 57 bytes each.
  const lines = Math.max(1, Math.floor((bytes - head.length - tail.length) / 78));
  const data = randomBytes(lines * 57).toString('base64');
  const body: string[] = [];
  for (let i = 0; i < data.length; i += 76) body.push(data.slice(i, i + 76));
  return Buffer.from(head + body.join('\r\n') + tail);
}

/** A fresh S3 key prefix ("t-<time>-<random>/"), so tests sharing a bucket never collide. */
export function freshPrefix(): string {
  return `t-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}/`;
}

/** A new empty directory under this run's temporary root (removed in global teardown). */
export function tempDir(prefix = 'tmp-'): string {
  return mkdtempSync(join(inject('tmpRoot'), prefix));
}

function nameOf(user: string | TestUser): string {
  return typeof user === 'string' ? user : user.user;
}

/**
 * Closes a repository a test opened on a store of its own, and that store: Repository.close() leaves the
 * store open (it belongs to the caller), and a LocalDirStore keeps pack files open for ranged reads,
 * which Node would otherwise close on garbage collection, with a warning.
 */
export async function closeRepository(repo: Repository | undefined): Promise<void> {
  if (repo === undefined) return;
  try {
    await repo.close();
  } finally {
    await repo.store.close();
  }
}
