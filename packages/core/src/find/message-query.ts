/**
 * The find query model: what support types (`--from bob --since yesterday`) parsed once into a
 * MessageQuery, and a pure matcher over snapshot entries. No I/O here.
 *
 * Rules it keeps:
 * - Text criteria (from, to, subject, has-attachment) are case-insensitive substrings of the decoded
 *   (RFC 2047) header text the snapshot stores, compared after Unicode NFC normalisation, so "ete"
 *   does not match "Été" but "été" does. `to` matches the To and the Cc recipients.
 * - messageId is an exact, case-insensitive match; angle brackets are optional.
 * - folder is an exact Unicode path ("Clients/Été"); a trailing `*` makes it a prefix
 *   ("Clients*" matches Clients and everything under it). INBOX is case-insensitive (RFC 3501 §5.1).
 * - user is an exact login name, case-insensitive.
 * - Dates bound the INTERNALDATE (when the server received the message, not the Date header):
 *   `2026-11-21` (a whole day, local time), `2026-11-21T10:30` (local) or with a zone
 *   (`...Z`, `+01:00`), `today`, `yesterday`, or an age `90m`, `12h`, `3d`, `2w` (before now).
 *   since is inclusive; until is inclusive of the whole day (or minute, or instant) it names.
 * - larger is strictly greater than a size in bytes, as IMAP SEARCH LARGER: `500k`, `10M`, `1G`
 *   (binary multiples, 1k = 1024), or plain bytes.
 * - hasAttachment: some attachment file name contains the text; the empty text means "any attachment".
 */
import { MailarkError } from '../errors.js';
import type { FolderNode, MessageEntry } from '../mail/snapshot.js';

/** A parsed query. Every criterion present must hold (AND). */
export interface MessageQuery {
  user?: string;
  folder?: string;
  from?: string;
  to?: string;
  subject?: string;
  messageId?: string;
  /** Internal date >= since (epoch ms). */
  since?: number;
  /** Internal date < before (epoch ms): the exclusive end of the --until period. */
  before?: number;
  /** Size strictly greater than this many bytes. */
  larger?: number;
  hasAttachment?: string;
}

/** The query as typed on the command line (or sent by another front end). */
export interface RawMessageQuery {
  user?: string;
  folder?: string;
  from?: string;
  to?: string;
  subject?: string;
  messageId?: string;
  since?: string;
  until?: string;
  larger?: string;
  hasAttachment?: string;
}

/** Parses and checks every criterion; a bad value is a USAGE error naming the option and an example. */
export function parseMessageQuery(raw: RawMessageQuery, now: Date = new Date()): MessageQuery {
  const q: MessageQuery = {};
  if (raw.user !== undefined) q.user = nonEmpty('--user', raw.user);
  if (raw.folder !== undefined) q.folder = nonEmpty('--folder', raw.folder);
  if (raw.from !== undefined) q.from = nonEmpty('--from', raw.from);
  if (raw.to !== undefined) q.to = nonEmpty('--to', raw.to);
  if (raw.subject !== undefined) q.subject = nonEmpty('--subject', raw.subject);
  if (raw.messageId !== undefined)
    q.messageId = stripMessageIdBrackets(nonEmpty('--message-id', raw.messageId));
  if (raw.since !== undefined) q.since = parseDateBound('--since', raw.since, now).start;
  if (raw.until !== undefined) q.before = parseDateBound('--until', raw.until, now).end;
  if (q.since !== undefined && q.before !== undefined && q.since >= q.before) {
    throw new MailarkError('USAGE', `--since ${raw.since} is not before --until ${raw.until}`, {
      hint: 'give --since an earlier date than --until, e.g. --since 2026-11-01 --until 2026-11-21',
    });
  }
  if (raw.larger !== undefined) q.larger = parseSize('--larger', raw.larger);
  if (raw.hasAttachment !== undefined) q.hasAttachment = raw.hasAttachment.trim();
  return q;
}

/** "<abc@x>" and " abc@x " both become "abc@x". */
export function stripMessageIdBrackets(id: string): string {
  const t = id.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1).trim() : t;
}

function nonEmpty(option: string, value: string): string {
  const v = value.trim();
  if (v === '') {
    throw new MailarkError('USAGE', `${option} needs a value`, { hint: `e.g. ${option} bob` });
  }
  return v;
}

/** A period of time a date expression names: [start, end) in epoch ms. */
export interface DatePeriod {
  start: number;
  end: number;
}

const DATE_HINT =
  'use an ISO date (2026-11-21), a local time (2026-11-21T10:30), an instant (2026-11-21T09:30:00Z), ' +
  'today, yesterday, or an age such as 12h, 3d or 2w';
const AGE_UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * The period a date expression names. A day is [local midnight, next local midnight); a minute or
 * second written without zone is local time; an age is the instant that long before now.
 */
export function parseDateBound(option: string, text: string, now: Date): DatePeriod {
  const t = text.trim().toLowerCase();
  if (t === 'today' || t === 'yesterday') {
    const d = new Date(now.getFullYear(), now.getMonth(), now.getDate() - (t === 'yesterday' ? 1 : 0));
    return dayPeriod(d.getFullYear(), d.getMonth(), d.getDate());
  }
  const age = /^(\d+)([mhdw])$/.exec(t);
  if (age !== null) {
    const at = now.getTime() - Number(age[1]) * (AGE_UNITS[age[2] as string] as number);
    return { start: at, end: at + 1 };
  }
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  if (day !== null) {
    const [y, m, d] = [Number(day[1]), Number(day[2]) - 1, Number(day[3])];
    const check = new Date(y, m, d);
    if (check.getFullYear() !== y || check.getMonth() !== m || check.getDate() !== d) badDate(option, text);
    return dayPeriod(y, m, d);
  }
  // Date and time: without a zone JavaScript reads it as local time, which is what a person means.
  const dt = /^\d{4}-\d{2}-\d{2}t(\d{2}):(\d{2})(:\d{2}(\.\d+)?)?(z|[+-]\d{2}:?\d{2})?$/.exec(t);
  if (dt !== null) {
    const ms = Date.parse(text.trim());
    if (Number.isNaN(ms)) badDate(option, text);
    // The period is as long as the precision written: a minute, a second or one millisecond.
    const span = dt[4] !== undefined ? 1 : dt[3] !== undefined ? 1000 : 60_000;
    return { start: ms, end: ms + span };
  }
  return badDate(option, text);
}

function dayPeriod(y: number, m: number, d: number): DatePeriod {
  return { start: new Date(y, m, d).getTime(), end: new Date(y, m, d + 1).getTime() };
}

function badDate(option: string, text: string): never {
  throw new MailarkError('USAGE', `${option}: cannot read "${text}" as a date`, { hint: DATE_HINT });
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** "500k" -> 512000, "10M" -> 10485760, "1.5m", "2MiB", "300" (bytes). */
export function parseSize(option: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?$/i.exec(text.trim());
  if (m === null) {
    throw new MailarkError('USAGE', `${option}: cannot read "${text}" as a size`, {
      hint: 'use bytes or a number with k, M or G (binary), e.g. 500k or 10M',
    });
  }
  return Math.floor(Number(m[1]) * (SIZE_UNITS[(m[2] ?? '').toLowerCase()] as number));
}

/** Lower-cased NFC text, for case-insensitive substring matching. */
function fold(s: string): string {
  return s.normalize('NFC').toLowerCase();
}

function contains(haystack: string | undefined, needle: string): boolean {
  return haystack !== undefined && fold(haystack).includes(fold(needle));
}

/** Whether a mailbox (login name) can hold matches: used to load only the mailboxes concerned. */
export function matchesUser(q: MessageQuery, user: string): boolean {
  return q.user === undefined || fold(q.user) === fold(user);
}

/** Whether a folder can hold matches: used to load only the folders concerned. */
export function matchesFolder(q: MessageQuery, folder: Pick<FolderNode, 'path'>): boolean {
  if (q.folder === undefined) return true;
  const norm = (p: string) =>
    (/^inbox($|[^\p{L}\p{N}])/iu.test(p) ? 'INBOX' + p.slice(5) : p).normalize('NFC');
  const want = norm(q.folder);
  const path = norm(folder.path);
  return want.endsWith('*') ? path.startsWith(want.slice(0, -1)) : path === want;
}

/** Whether one message entry satisfies the message-level criteria (user and folder are checked apart). */
export function matchesEntry(q: MessageQuery, e: MessageEntry): boolean {
  const h = e.h;
  if (q.messageId !== undefined && (h.messageId === undefined || fold(h.messageId) !== fold(q.messageId))) {
    return false;
  }
  if (q.from !== undefined && !contains(h.from, q.from)) return false;
  if (q.to !== undefined && !contains(h.to, q.to) && !contains(h.cc, q.to)) return false;
  if (q.subject !== undefined && !contains(h.subject, q.subject)) return false;
  if (q.larger !== undefined && !(e.size > q.larger)) return false;
  if (q.since !== undefined || q.before !== undefined) {
    const t = Date.parse(e.internalDate);
    if (q.since !== undefined && !(t >= q.since)) return false;
    if (q.before !== undefined && !(t < q.before)) return false;
  }
  if (q.hasAttachment !== undefined) {
    const names = h.attachments ?? [];
    if (names.length === 0) return false;
    const want = q.hasAttachment;
    if (want !== '' && !names.some((n) => contains(n, want))) return false;
  }
  return true;
}

/** True when the query holds no criterion at all (find lists everything). */
export function isEmptyQuery(q: MessageQuery): boolean {
  return Object.values(q).every((v) => v === undefined);
}
