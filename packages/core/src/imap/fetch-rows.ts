/**
 * UID FETCH (RFC 3501 §6.4.5) whose response rows (§7.4.2) are read here, for the backup's two FETCHes
 * per message (the listing and the body batch).
 *
 * imapflow's fetch() turns every row into a message object: it re-compiles each attribute name, hashes
 * an id per message (MD5, re-encoding a non-ASCII folder name each time), builds Sets and closures, and
 * hands the rows out one promise round trip at a time. The backup reads five fields of each row. So
 * this sends the same command through imapflow's command layer (exec(), the call its own FETCH makes:
 * tags, queueing, literals, NO/BAD errors and unsolicited responses stay imapflow's) and takes those
 * fields straight from the parsed row. 500 MB rig, body batches alone: ~30% less CPU than fetch().
 *
 * Rules it keeps:
 * - the command is the one imapflow's fetch() sends: MODSEQ is asked exactly when it would be (CONDSTORE
 *   enabled and the folder has mod-sequences, RFC 7162 §3.1.4), bodies as BODY.PEEK[] (never \Seen);
 * - field values read as imapflow reads them (numbers as safe decimal integers, strings and literals as
 *   UTF-8 text, a body literal as its bytes);
 * - exec() is not in imapflow's typings: where a client lacks it, fetch() does the same work.
 */
import type { FetchMessageObject, ImapFlow } from 'imapflow';

/** What to ask besides UID (and MODSEQ, asked as imapflow would). */
export interface RowQuery {
  flags?: boolean;
  internalDate?: boolean;
  size?: boolean;
  /** BODY.PEEK[] whole, or the piece <start.length>. */
  body?: true | { start: number; length: number };
}

/** One FETCH response row; fields absent when the row did not carry them. */
export interface FetchRow {
  uid: number;
  flags?: string[];
  size?: number;
  internalDate?: Date;
  /** Decimal, as BigInt prints it. */
  modseq?: string;
  body?: Buffer;
}

/** A node of imapflow's parsed response (an atom, string, literal or list). */
interface Node {
  type?: string;
  value?: unknown;
  section?: unknown[];
}

type Exec = (
  command: string,
  attributes: unknown[],
  options: { untagged: { FETCH: (row: { attributes?: unknown[] }) => Promise<void> } },
) => Promise<{ next(): void }>;

/** UID FETCH `range` (a UID set); rows without a UID (which no UID FETCH should send) are left out. */
export async function fetchRows(c: ImapFlow, range: string, q: RowQuery): Promise<FetchRow[]> {
  const exec = (c as unknown as { exec?: Exec }).exec;
  if (typeof exec !== 'function') return viaFetch(c, range, q);
  const items: Node[] = [{ type: 'ATOM', value: 'UID' }];
  if (q.flags) items.push({ type: 'ATOM', value: 'FLAGS' });
  if (q.internalDate) items.push({ type: 'ATOM', value: 'INTERNALDATE' });
  if (q.size) items.push({ type: 'ATOM', value: 'RFC822.SIZE' });
  if (q.body !== undefined) {
    const peek: Node & { partial?: number[] } = { type: 'ATOM', value: 'BODY.PEEK', section: [] };
    if (q.body !== true) peek.partial = [q.body.start, q.body.length];
    items.push(peek);
  }
  if (c.enabled.has('CONDSTORE') && c.mailbox && !c.mailbox.noModseq)
    items.push({ type: 'ATOM', value: 'MODSEQ' });
  const rows: FetchRow[] = [];
  const response = await exec.call(c, 'UID FETCH', [{ type: 'SEQUENCE', value: range }, items], {
    untagged: {
      FETCH: async (untagged) => {
        const row = readRow(untagged.attributes);
        if (row !== undefined) rows.push(row);
      },
    },
  });
  response.next();
  return rows;
}

/** The fields of one `* n FETCH (...)` row: its attributes are [FETCH, [name, value, name, value…]]. */
export function readRow(attributes: unknown[] | undefined): FetchRow | undefined {
  const list = attributes?.[1];
  if (!Array.isArray(list)) return undefined;
  const row: Partial<FetchRow> = {};
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i] as Node | undefined;
    const value = list[i + 1] as Node | Node[] | undefined;
    switch (typeof name?.value === 'string' ? name.value.toUpperCase() : '') {
      case 'UID': {
        const uid = uintOf(textOf(value), 10);
        if (uid !== undefined && uid > 0) row.uid = uid;
        break;
      }
      case 'FLAGS':
        row.flags = Array.isArray(value) ? value.map(textOf).filter((f): f is string => !!f) : [];
        break;
      case 'RFC822.SIZE':
        row.size = uintOf(textOf(value), 20) ?? 0;
        break;
      case 'INTERNALDATE':
        row.internalDate = new Date(textOf(value) ?? '');
        break;
      case 'MODSEQ': {
        const m = Array.isArray(value) ? textOf(value[0]) : undefined;
        if (m !== undefined && /^\d{1,20}$/.test(m)) row.modseq = BigInt(m).toString();
        break;
      }
      case 'BODY':
        // BODY[] and BODY[]<start>: the whole message (or a piece of it); other sections are not asked.
        if (Array.isArray(name?.section) && name.section.length === 0) row.body = bytesOf(value);
        break;
    }
  }
  return row.uid === undefined ? undefined : (row as FetchRow);
}

function textOf(v: Node | Node[] | undefined): string | undefined {
  if (v === undefined || Array.isArray(v)) return undefined;
  if (typeof v.value === 'string') return v.value;
  if (Buffer.isBuffer(v.value)) return v.value.toString();
  return undefined;
}

function bytesOf(v: Node | Node[] | undefined): Buffer {
  if (v === undefined || Array.isArray(v)) return Buffer.alloc(0);
  if (Buffer.isBuffer(v.value)) return v.value;
  return typeof v.value === 'string' ? Buffer.from(v.value) : Buffer.alloc(0);
}

/** A safe decimal integer, as imapflow reads numbers (a rounded UID would name another message). */
function uintOf(s: string | undefined, maxDigits: number): number | undefined {
  if (s === undefined || s.length > maxDigits || !/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The same rows through imapflow's public fetch(). */
async function viaFetch(c: ImapFlow, range: string, q: RowQuery): Promise<FetchRow[]> {
  const query = {
    uid: true,
    flags: q.flags === true,
    internalDate: q.internalDate === true,
    size: q.size === true,
    ...(q.body === undefined
      ? {}
      : { source: q.body === true ? true : { start: q.body.start, maxLength: q.body.length } }),
  };
  const rows: FetchRow[] = [];
  for await (const m of c.fetch(range, query, { uid: true })) {
    const row = rowOf(m);
    if (row !== undefined) rows.push(row);
  }
  return rows;
}

/** A FetchRow from imapflow's message object. */
export function rowOf(m: FetchMessageObject): FetchRow | undefined {
  if (!m.uid) return undefined;
  const row: FetchRow = { uid: m.uid };
  if (m.flags !== undefined) row.flags = [...m.flags];
  if (m.size !== undefined) row.size = m.size;
  if (m.internalDate !== undefined) row.internalDate = new Date(m.internalDate);
  if (m.modseq !== undefined) row.modseq = String(m.modseq);
  if (m.source !== undefined) row.body = m.source;
  return row;
}
