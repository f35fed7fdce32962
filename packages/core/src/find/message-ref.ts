/**
 * Message references: the stable, copy-pasteable name `find` prints and `restore` takes.
 *
 *   <snapshot>/<user>/<folder>/<uidvalidity>/<uid>
 *   e.g.  3fa2b1c9/alice@example.com/Clients%2F%C3%89t%C3%A9/1700000000/42
 *
 * - snapshot: the first 8 hex digits of the snapshot id (any unique prefix of 8 to 64 digits is read);
 * - user, folder: the login name and the Unicode folder path, percent-encoded (UTF-8) except for
 *   the letters, digits and `-._~@+=,!:`: so a folder name with `/`, spaces, quotes, `%` or any
 *   non-ASCII character survives, and the whole reference is one shell word of printable ASCII;
 * - uidvalidity, uid: decimal, as the server assigned them (RFC 3501 §2.3.1.1).
 *
 * The folder is part of the name because UIDVALIDITY alone does not tell folders apart: Dovecot
 * derives it from the creation time, so folders created in the same second share it. The snapshot
 * holds exactly one message for (user, folder, uid); uidvalidity guards against a folder that was
 * deleted and recreated under the same name.
 *
 * Parsing is strict: anything else is a USAGE error that shows the format.
 */
import { MailarkError } from '../errors.js';

export interface MessageRef {
  /** Snapshot id or unique prefix (8 to 64 lower-case hex digits). */
  snapshot: string;
  user: string;
  folder: string;
  /** Decimal string: UIDVALIDITY is 32-bit unsigned, kept as text like FolderNode.uidValidity. */
  uidValidity: string;
  uid: number;
}

/** How many hex digits of the snapshot id a formatted reference carries. */
export const REF_SNAPSHOT_DIGITS = 8;

const KEEP = /[A-Za-z0-9\-._~@+=,!:]/;
const MAX_U32 = 0xffffffff;

/** Percent-encodes every UTF-8 byte of a character outside KEEP. */
function escapeComponent(s: string): string {
  let out = '';
  for (const ch of s) {
    if (KEEP.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function formatMessageRef(ref: MessageRef): string {
  return [
    ref.snapshot.slice(0, REF_SNAPSHOT_DIGITS),
    escapeComponent(ref.user),
    escapeComponent(ref.folder),
    ref.uidValidity,
    String(ref.uid),
  ].join('/');
}

const EXAMPLE = '3fa2b1c9/alice@example.com/Clients%2F%C3%89t%C3%A9/1700000000/42';

function bad(text: string, why: string): never {
  throw new MailarkError('USAGE', `"${text}" is not a message reference: ${why}`, {
    hint: `a reference is <snapshot>/<user>/<folder>/<uidvalidity>/<uid> as "mailark find" prints it, e.g. ${EXAMPLE}`,
    details: { ref: text },
  });
}

function unescapeComponent(text: string, part: string, name: string): string {
  if (part === '') bad(text, `the ${name} is empty`);
  if (!/^(?:[A-Za-z0-9\-._~@+=,!:]|%[0-9A-Fa-f]{2})+$/.test(part)) {
    bad(text, `the ${name} "${part}" holds characters that must be percent-encoded`);
  }
  try {
    return decodeURIComponent(part);
  } catch {
    return bad(text, `the ${name} "${part}" is not valid percent-encoded UTF-8`);
  }
}

function decimal(text: string, part: string, name: string, min: number): string {
  if (!/^\d{1,10}$/.test(part) || Number(part) > MAX_U32 || Number(part) < min) {
    bad(text, `the ${name} "${part}" is not a number between ${min} and ${MAX_U32}`);
  }
  // Canonical decimal: "007" and "7" name the same UID; keep one spelling.
  return String(Number(part));
}

export function parseMessageRef(text: string): MessageRef {
  const t = text.trim();
  const parts = t.split('/');
  if (parts.length !== 5) bad(t, `it has ${parts.length} parts separated by "/", expected 5`);
  const [snap, user, folder, uidValidity, uid] = parts as [string, string, string, string, string];
  if (!/^[0-9a-f]{8,64}$/.test(snap)) bad(t, `the snapshot "${snap}" is not 8 to 64 lower-case hex digits`);
  return {
    snapshot: snap,
    user: unescapeComponent(t, user, 'user'),
    folder: unescapeComponent(t, folder, 'folder'),
    uidValidity: decimal(t, uidValidity, 'uidvalidity', 0),
    uid: Number(decimal(t, uid, 'uid', 1)),
  };
}

/** True when text looks like a reference at all (front ends use it to tell refs from other words). */
export function isMessageRefLike(text: string): boolean {
  return /^[0-9a-f]{8,64}\/[^/]+\/[^/]+\/\d+\/\d+$/.test(text.trim());
}
