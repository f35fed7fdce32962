// A seeded, realistic mail corpus written straight into Dovecot Maildirs (far faster than APPEND for
// gigabytes). Same seed, same bytes: benchmark runs are comparable.
//
// What makes it realistic for a backup tool:
// - sizes: mostly small text mail, a sixth with attachments, a few large ones (up to 25 MB): about
//   20 messages per MB, the shape of issue 3's reference tenant (2 GB, 40k messages, 20 users);
// - the same mail delivered to many users ("broadcast"): identical bodies, different top headers
//   (Received, Delivered-To, Return-Path), which is how a tenant really duplicates mail;
// - forwarded attachments: the same attachment bytes inside different messages;
// - attachments are incompressible (like PDFs and JPEGs), text is compressible like prose;
// - folders with non-ASCII and nested names, flags and keywords, internal dates over two years.
import { chmodSync, chownSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** mulberry32: tiny, fast, deterministic. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  next.pick = (arr) => arr[Math.floor(next() * arr.length)];
  return next;
}

/** Incompressible bytes from a seed (xorshift32), fast enough for gigabytes. */
function noise(seed, length) {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer, 0, length);
}

const SYLLABLES =
  'ka lo mi ne ra su te vo ba de fi gu ho ja ku le ma no pe qui ri sa to vu we xe yo za an en in on un'.split(
    ' ',
  );

function vocabulary(r, n) {
  const words = [];
  for (let i = 0; i < n; i++) {
    let w = '';
    const len = r.int(1, 4);
    for (let j = 0; j < len; j++) w += r.pick(SYLLABLES);
    words.push(w);
  }
  return words;
}

function prose(r, words, bytes) {
  const lines = [];
  let size = 0;
  while (size < bytes) {
    let line = '';
    while (line.length < 66) line += (line ? ' ' : '') + r.pick(words);
    lines.push(line);
    size += line.length + 2;
  }
  return lines.join('\r\n');
}

function base64Lines(buf) {
  const b64 = buf.toString('base64');
  const out = [];
  for (let i = 0; i < b64.length; i += 76) out.push(b64.slice(i, i + 76));
  return out.join('\r\n');
}

/** Modified UTF-7 (RFC 3501 §5.1.3), as Dovecot names Maildir++ folders on disk. */
export function encodeMailboxName(name) {
  return name.replace(/&/g, '&-').replace(/[^\x20-\x7e]+/g, (chunk) => {
    const utf16 = Buffer.alloc(chunk.length * 2);
    for (let i = 0; i < chunk.length; i++) utf16.writeUInt16BE(chunk.charCodeAt(i), i * 2);
    return `&${utf16.toString('base64').replace(/=+$/, '').replace(/\//g, ',')}-`;
  });
}

const FOLDERS = [
  'INBOX',
  'Sent',
  'Archive',
  'Archive/2024',
  'Projets/Été 2024',
  '顧客',
  'Clients/A&B',
  'Trash',
];
const FLAG_SETS = [['S'], ['S'], ['S'], ['S', 'R'], [], ['F', 'S'], ['S'], ['S', 'T']];
const KEYWORDS = ['$Forwarded', 'Important', '$Label1', 'Projet-X'];

/**
 * Generates the corpus into maildirOf(user) for users user1..userN@bench.test.
 * Returns { users, messages, bytes, largest, files, broadcastCopies }.
 */
export function generateCorpus({
  targetBytes,
  users: nUsers,
  seed = 42,
  maildirOf,
  domain = 'bench.test',
  owner,
}) {
  const r = rng(seed);
  const words = vocabulary(r, 3000);
  const users = Array.from({ length: nUsers }, (_, i) => `user${i + 1}@${domain}`);
  const attachmentPool = [];
  const start = Date.UTC(2024, 0, 1) / 1000;
  const span = 2 * 365 * 86400;
  const seq = new Map();
  const keywordsOf = new Map(); // maildir folder dir -> keyword list (dovecot-keywords)
  let bytes = 0;
  let messages = 0;
  let largest = 0;
  let broadcastCopies = 0;
  let msgNo = 0;
  const largeBudget = Math.max(1, Math.floor(targetBytes / (500 * 1024 * 1024)));
  let largeCount = 0;

  const folderDir = (user, folder) => {
    const root = maildirOf(user);
    const dir = folder === 'INBOX' ? root : join(root, `.${encodeMailboxName(folder).replace(/\//g, '.')}`);
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dir, sub), { recursive: true });
    return dir;
  };

  const attachment = () => {
    if (attachmentPool.length > 0 && r() < 0.3) return r.pick(attachmentPool); // forwarded again
    const roll = r();
    let size;
    if (roll < 0.8) size = r.int(5_000, 60_000);
    else if (roll < 0.985) size = r.int(60_000, 400_000);
    else size = r.int(1_000_000, 3_000_000);
    const a = {
      name: `${r.pick(words)}-${r.int(1, 999)}.${r.pick(['pdf', 'jpg', 'docx', 'xlsx', 'zip'])}`,
      data: base64Lines(noise(r.int(1, 2 ** 31), size)),
    };
    if (attachmentPool.length < 400) attachmentPool.push(a);
    return a;
  };

  while (bytes < targetBytes) {
    msgNo++;
    const sender = `${r.pick(words)}.${r.pick(words)}@${r.pick(['example.org', 'partner.fr', 'mail.example.jp', domain])}`;
    const subject = prose(r, words, 30).slice(0, r.int(12, 60));
    const date = start + r.int(0, span);
    const messageId = `${msgNo}.${r.int(1, 1e9)}@bench.mailark`;
    const boundary = `=_b${msgNo}_${r.int(1, 1e9)}`;
    let body;
    const roll = r();
    if (roll < 0.003 && largeCount < largeBudget) {
      largeCount++;
      const size = r.int(8_000_000, 25_000_000);
      body = {
        kind: 'mixed',
        text: prose(r, words, 800),
        atts: [{ name: `scan-${msgNo}.pdf`, data: base64Lines(noise(msgNo, Math.floor(size * 0.74))) }],
      };
    } else if (roll < 0.18) {
      body = {
        kind: 'mixed',
        text: prose(r, words, r.int(300, 3000)),
        atts: [attachment(), ...(r() < 0.2 ? [attachment()] : [])],
      };
    } else if (roll < 0.5) {
      const text = prose(r, words, r.int(500, 12_000));
      body = {
        kind: 'alternative',
        text,
        html: `<html><body><p>${text.replace(/\r\n/g, '</p>\r\n<p>')}</p></body></html>`,
      };
    } else {
      body = { kind: 'plain', text: prose(r, words, r.int(300, 15_000)) };
    }
    let mime;
    if (body.kind === 'plain') {
      mime = `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body.text}\r\n`;
    } else if (body.kind === 'alternative') {
      mime =
        `Content-Type: multipart/alternative; boundary="${boundary}"\r\n\r\n--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body.text}\r\n` +
        `--${boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${body.html}\r\n--${boundary}--\r\n`;
    } else {
      mime = `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body.text}\r\n`;
      for (const a of body.atts) {
        mime += `--${boundary}\r\nContent-Type: application/octet-stream; name="${a.name}"\r\nContent-Disposition: attachment; filename="${a.name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${a.data}\r\n`;
      }
      mime += `--${boundary}--\r\n`;
    }
    // Delivered to one user, or broadcast to several (same body, different top headers).
    const recipients = r() < 0.06 ? users.filter(() => r() < 0.5).slice(0, r.int(2, 12)) : [r.pick(users)];
    if (recipients.length === 0) recipients.push(r.pick(users));
    const common =
      `From: ${sender}\r\nTo: ${recipients.join(', ')}\r\nSubject: ${subject}\r\nDate: ${new Date(date * 1000).toUTCString().replace('GMT', '+0000')}\r\n` +
      `Message-ID: <${messageId}>\r\nMIME-Version: 1.0\r\n${mime}`;
    for (const rcpt of recipients) {
      const folder = r() < 0.55 ? 'INBOX' : r.pick(FOLDERS);
      const flags = [...r.pick(FLAG_SETS)];
      const dir = folderDir(rcpt, folder);
      if (!keywordsOf.has(dir)) keywordsOf.set(dir, []);
      const kws = keywordsOf.get(dir);
      if (r() < 0.05) {
        const kw = r.pick(KEYWORDS);
        if (!kws.includes(kw)) kws.push(kw);
        flags.push(String.fromCharCode(97 + kws.indexOf(kw)));
      }
      const top = `Return-Path: <${sender}>\r\nDelivered-To: ${rcpt}\r\nReceived: from mx${r.int(1, 9)}.example.net by mail.${domain} with LMTP id ${r.int(1, 1e9)}; ${new Date((date + r.int(0, 60)) * 1000).toUTCString()}\r\n`;
      const raw = top + common;
      const size = Buffer.byteLength(raw);
      const n = (seq.get(dir) ?? 0) + 1;
      seq.set(dir, n);
      const file = join(dir, 'cur', `${date}.M${n}P${msgNo}.bench,S=${size}:2,${flags.sort().join('')}`);
      writeFileSync(file, raw);
      utimesSync(file, date, date); // Maildir: mtime is the internal date
      bytes += size;
      messages++;
      largest = Math.max(largest, size);
      if (recipients.length > 1) broadcastCopies++;
    }
  }
  for (const [dir, kws] of keywordsOf) {
    if (kws.length > 0)
      writeFileSync(join(dir, 'dovecot-keywords'), kws.map((k, i) => `${i} ${k}\n`).join(''));
  }
  for (const user of users) {
    writeFileSync(
      join(maildirOf(user), 'subscriptions'),
      `${FOLDERS.filter((f) => f !== 'INBOX')
        .map(encodeMailboxName)
        .join('\n')}\n`,
    );
    if (owner) chownTree(dirname(maildirOf(user)), owner.uid, owner.gid);
  }
  return { users, messages, bytes, largest, broadcastCopies };
}

function chownTree(path, uid, gid) {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) {
    chmodSync(path, 0o700);
    for (const e of readdirSync(path)) chownTree(join(path, e), uid, gid);
  }
}
