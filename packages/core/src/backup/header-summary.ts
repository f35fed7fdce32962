/**
 * The headers `find` needs (HeaderSummary), read from a message's bytes as they stream past.
 *
 * Rules it keeps:
 * - never throws on broken mail: undecodable text falls back (UTF-8, then windows-1252), a bad Date is
 *   left out, an unknown charset in an encoded word keeps its raw text;
 * - bounded memory: only the top header block (capped) and MIME part header blocks are held, never a
 *   body; a single-part message costs one scan of its header block and nothing after it;
 * - attachment names come from every MIME part header (RFC 2046 boundaries, nested multiparts and
 *   message/rfc822 parts), decoded from RFC 2231 parameters (via libmime) and RFC 2047 words.
 */
import { createRequire } from 'node:module';
import type Libmime from 'libmime';
import type { HeaderSummary } from '../mail/snapshot.js';

// libmime (and the iconv tables it pulls in) costs ~90 ms CPU to load: loaded on the first header
// parsed, so commands that never parse mail (find, restore, check) never pay for it.
let libmimeModule: typeof Libmime | undefined;
function libmime(): typeof Libmime {
  libmimeModule ??= createRequire(import.meta.url)('libmime') as typeof Libmime;
  return libmimeModule;
}

const MAX_TOP_HEADER = 256 * 1024;
const MAX_PART_HEADER = 64 * 1024;
/** Longest line kept whole: boundary lines are at most 70 + 4 characters (RFC 2046 §5.1.1). */
const MAX_LINE = 4096;
const MAX_BOUNDARIES = 256;
const MAX_ATTACHMENTS = 500;
/** Caps on stored header text, so that a mass mailing's To: does not bloat every page. */
const MAX_TEXT = 2048;
/** The fields summarize() and the MIME walk read from a top header block; the rest is never parsed. */
const TOP_FIELDS = new Set([
  'message-id',
  'from',
  'to',
  'cc',
  'subject',
  'date',
  'content-type',
  'content-disposition',
]);
/** The fields read from a MIME part's header block. */
const PART_FIELDS = new Set(['content-type', 'content-disposition']);

type Phase = 'top' | 'body' | 'part' | 'nested';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const cp1252 = new TextDecoder('windows-1252');

/** Raw 8-bit header text: UTF-8 when valid (RFC 6532), windows-1252 otherwise (legacy mail). */
function decodeRaw(bin: string): string {
  if (/^[\u0000-\u007f]*$/.test(bin)) return bin;
  const bytes = Buffer.from(bin, 'latin1');
  try {
    return utf8.decode(bytes);
  } catch {
    return cp1252.decode(bytes);
  }
}

const WORD = '=\\?[^?\\s]+\\?[QqBb]\\?[^?]*\\?=';
/** A run of RFC 2047 encoded words separated by white space only (which §6.2 says to drop). */
const WORD_RUN = new RegExp(`${WORD}(?:\\s*${WORD})*`, 'g');
const ONE_WORD = /=\?([^?\s]+)\?([QqBb])\?([^?]*)\?=/g;

/**
 * Decodes a binary header value: RFC 2047 encoded words through libmime (with UTF-7 words, which it
 * refuses, decoded here), everything between them as raw 8-bit text.
 */
export function decodeHeaderText(bin: string): string {
  let out = '';
  let last = 0;
  for (const m of bin.matchAll(WORD_RUN)) {
    out += decodeRaw(bin.slice(last, m.index));
    out += decodeWordRun(m[0]);
    last = m.index + m[0].length;
  }
  return out + decodeRaw(bin.slice(last));
}

function decodeWordRun(run: string): string {
  // 8-bit bytes inside a Q word (broken, but common) are taken as the bytes they are.
  const escaped = run.replace(
    /[\u0080-\u00ff]/g,
    (c) => `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
  try {
    if (!/=\?utf-7[?*]/i.test(escaped)) return libmime().decodeWords(escaped);
    let out = '';
    for (const w of escaped.matchAll(ONE_WORD)) {
      const [, charset = '', enc = '', payload = ''] = w;
      if (!/^utf-7(\*|$)/i.test(charset)) out += libmime().decodeWord(charset, enc, payload);
      else out += decodeUtf7(libmime().decodeWord('iso-8859-1', enc, payload));
    }
    return out;
  } catch {
    return decodeRaw(run);
  }
}

/** UTF-7 (RFC 2152): "+" base64 of UTF-16BE "-"; "+-" is a plus sign. */
function decodeUtf7(s: string): string {
  return s.replace(/\+([A-Za-z0-9+/]*)-?/g, (_m, b64: string) => {
    if (b64.length === 0) return '+';
    const bytes = Buffer.from(b64, 'base64');
    let out = '';
    for (let i = 0; i + 1 < bytes.length; i += 2) out += String.fromCharCode(bytes.readUInt16BE(i));
    return out;
  });
}

/**
 * The fields of one header block that the summary reads (`wanted`), parsed as libmime's decodeHeaders
 * parses the whole block: lines split at CR, LF or CRLF, leading empty lines skipped, the block ended
 * by an empty line, a line opening with a space or tab folded into the field before it, each field
 * split at its first colon (name trimmed and lowercased, value trimmed). Only wanted fields become
 * strings: a Received: chain is never decoded nor parsed. Fields are held as "binary" strings (latin1:
 * one char per byte) so that structure parsing never loses a byte; text is decoded only when a value
 * is read (decodeHeaderText).
 */
class BlockFields {
  private out: Record<string, string[]> = {};
  /** The unfolded text of the field being read, while it may be wanted. */
  private field: string | undefined;
  /** A field has begun (a line opening with blank space continues it). */
  private open = false;
  /** An empty line ended the block (for decodeHeaders): nothing after it counts. */
  private ended = false;

  constructor(private readonly wanted: ReadonlySet<string>) {}

  /** One line, buf[start, end), its LF (and the CR before it) removed. */
  push(buf: Buffer, start: number, end: number): void {
    // Joined by LF, a CR left at the end is eaten by decodeHeaders' CRLF split: as if absent.
    if (end > start && buf[end - 1] === 0x0d) end--;
    for (;;) {
      // A bare CR inside the line splits it, for decodeHeaders, into two lines.
      const cr = buf.indexOf(0x0d, start);
      const stop = cr < 0 || cr >= end ? end : cr;
      this.part(buf, start, stop);
      if (stop === end) return;
      start = stop + 1;
    }
  }

  /** The wanted fields read so far (the block ends here). */
  headers(): Record<string, string[]> {
    this.closeField();
    return this.out;
  }

  clone(): BlockFields {
    const c = new BlockFields(this.wanted);
    for (const [k, v] of Object.entries(this.out)) c.out[k] = [...v];
    c.field = this.field;
    c.open = this.open;
    c.ended = this.ended;
    return c;
  }

  private part(buf: Buffer, start: number, end: number): void {
    if (this.ended) return;
    if (start === end) {
      // Leading empty lines are skipped; any later one ends the block.
      if (this.open) {
        this.closeField();
        this.ended = true;
      }
      return;
    }
    const first = buf[start];
    if (this.open && (first === 0x20 || first === 0x09)) {
      if (this.field === undefined) return;
      // Unfolding (decodeHeader): the line break and the blanks opening the next line become one space.
      let from = start;
      while (from < end && (buf[from] === 0x20 || buf[from] === 0x09)) from++;
      this.field += ` ${buf.toString('latin1', from, end)}`;
      return;
    }
    this.closeField();
    this.open = true;
    if (this.mayWant(buf, start, end)) this.field = buf.toString('latin1', start, end);
  }

  /** False only when the name before the first colon is surely not wanted (no colon: it may fold). */
  private mayWant(buf: Buffer, start: number, end: number): boolean {
    const colon = buf.indexOf(0x3a, start);
    if (colon < 0 || colon >= end) return true;
    return this.wanted.has(buf.toString('latin1', start, colon).trim().toLowerCase());
  }

  /**
   * decodeHeader of the field read, kept when its name is wanted. decodeHeader matches the trimmed
   * field against /^\s*([^:]+):(.*)$/; with no line break left in it (and none of U+2028/2029 in
   * latin1), that is: a name before the first colon, not empty, and the rest.
   */
  private closeField(): void {
    const field = this.field;
    if (field === undefined) return;
    this.field = undefined;
    const line = field.trim();
    const colon = line.indexOf(':');
    if (colon <= 0) return;
    const key = line.slice(0, colon).trim().toLowerCase();
    if (!this.wanted.has(key)) return;
    const value = line.slice(colon + 1).trim();
    const list = this.out[key];
    if (list === undefined) this.out[key] = [value];
    else list.push(value);
  }
}

/** Feed a message's bytes in order with push(); summary() gives the result (also mid-stream). */
export class HeaderScanner {
  private phase: Phase = 'top';
  /** The unfinished last line of the previous piece. */
  private carry: Buffer[] = [];
  private carryLen = 0;
  /** In a body: the previous piece ended inside a line that is no delimiter (skip to its end). */
  private midLine = false;
  /** The header block being read (top, part or nested): the lines of the fields it needs. */
  private block = new BlockFields(TOP_FIELDS);
  private blockBytes = 0;
  private topHeaders: Record<string, string[]> | undefined;
  private readonly boundaries = new Set<string>();
  private readonly attachments: string[] = [];

  push(piece: Uint8Array): void {
    try {
      this.scan(piece);
    } catch {
      // A summary is best effort; the message's bytes are stored whatever happens here.
      this.phase = 'body';
      this.boundaries.clear();
    }
  }

  summary(): HeaderSummary {
    try {
      if (this.topHeaders === undefined) {
        // Ended inside the header block (no empty line): what was read is the header.
        const block = this.block.clone();
        if (this.carryLen > 0) {
          const rest = Buffer.concat(this.carry);
          block.push(rest, 0, rest.length);
        }
        return summarize(block.headers(), this.attachments);
      }
      return summarize(this.topHeaders, this.attachments);
    } catch {
      return {};
    }
  }

  private scan(piece: Uint8Array): void {
    const buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    // Past the top header of a single-part message nothing else matters: skip the body unread.
    if (this.phase === 'body' && this.boundaries.size === 0) return;
    let start = 0;
    for (;;) {
      if (this.phase === 'body' && this.carryLen === 0) {
        // In a body only delimiter lines matter, and they open with "--": jump from one line that
        // starts with "-" to the next instead of visiting every line of an attachment.
        if (this.midLine) {
          const lf = buf.indexOf(0x0a, start);
          if (lf < 0) return;
          this.midLine = false;
          start = lf + 1;
        }
        if (start >= buf.length) return;
        if (buf[start] !== 0x2d) {
          const next = lineOpeningDash(buf, start);
          if (next < 0) {
            this.midLine = buf[buf.length - 1] !== 0x0a;
            return;
          }
          start = next;
        }
      }
      const lf = buf.indexOf(0x0a, start);
      if (lf < 0) {
        this.keep(buf.subarray(start));
        return;
      }
      if (this.carryLen > 0) {
        this.keep(buf.subarray(start, lf));
        const joined = Buffer.concat(this.carry);
        this.carry = [];
        this.carryLen = 0;
        this.line(joined, 0, joined.length);
      } else {
        this.line(buf, start, lf);
      }
      if (this.phase === 'body' && this.boundaries.size === 0) return;
      start = lf + 1;
    }
  }

  private keep(bytes: Buffer): void {
    const room = MAX_LINE - this.carryLen;
    if (room <= 0 || bytes.length === 0) return;
    const part = Buffer.from(bytes.subarray(0, room));
    this.carry.push(part);
    this.carryLen += part.length;
  }

  /** The line buf[start, end) without its LF. */
  private line(buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === 0x0d) end--;
    const length = end - start;
    if (this.phase === 'body') {
      // RFC 2046 §5.1.1: a delimiter line is "--" boundary, optionally "--" (close), then white space.
      if (length < 3 || buf[start] !== 0x2d || buf[start + 1] !== 0x2d) return;
      const open = buf.toString('latin1', start + 2, end).trimEnd();
      if (this.boundaries.has(open)) this.startBlock('part');
      return;
    }
    if (length === 0) {
      this.endBlock();
      return;
    }
    const cap = this.phase === 'top' ? MAX_TOP_HEADER : MAX_PART_HEADER;
    if (this.blockBytes + length > cap) return;
    this.block.push(buf, start, end);
    this.blockBytes += length + 1;
  }

  private startBlock(phase: Phase): void {
    this.phase = phase;
    this.block = new BlockFields(phase === 'top' ? TOP_FIELDS : PART_FIELDS);
    this.blockBytes = 0;
  }

  private endBlock(): void {
    const headers = this.block.headers();
    const kind = this.phase;
    this.startBlock('body');
    if (kind === 'top') this.topHeaders = headers;
    const type = parseParams(first(headers, 'content-type'));
    const mime = type?.value.toLowerCase() ?? '';
    if (mime.startsWith('multipart/')) {
      const b = type?.params.boundary;
      if (b !== undefined && b.length > 0 && this.boundaries.size < MAX_BOUNDARIES) this.boundaries.add(b);
    }
    if (kind !== 'nested') {
      const name = attachmentName(headers, type);
      if (name !== undefined && this.attachments.length < MAX_ATTACHMENTS) this.attachments.push(name);
    }
    // RFC 2046 §5.2.1: a message/rfc822 part's body is a whole message; its header may open a multipart.
    if (kind === 'part' && mime === 'message/rfc822') this.startBlock('nested');
  }
}

/**
 * Index of the first "-" after `from` that opens a line (follows a LF), or -1. Searches for the dash
 * alone: base64 has none, so an attachment is crossed in one native search, where searching "\n-"
 * stopped at every line break.
 */
function lineOpeningDash(buf: Buffer, from: number): number {
  for (let at = from; ; ) {
    const dash = buf.indexOf(0x2d, at + 1);
    if (dash < 0 || buf[dash - 1] === 0x0a) return dash;
    at = dash;
  }
}

/** HeaderSummary of a whole message held in memory. */
export function summarizeMessage(bytes: Uint8Array): HeaderSummary {
  const s = new HeaderScanner();
  s.push(bytes);
  return s.summary();
}

function first(headers: Record<string, string[]>, key: string): string | undefined {
  return Object.hasOwn(headers, key) ? headers[key]?.[0] : undefined;
}

function parseParams(value: string | undefined) {
  if (value === undefined) return undefined;
  try {
    return libmime().parseHeaderValue(value, { stripComments: true });
  } catch {
    return undefined;
  }
}

/** A binary header value decoded (unless already decoded); folding, controls and runs of blanks collapsed; capped. */
function text(value: string | undefined, encodedWords = true): string | undefined {
  if (value === undefined) return undefined;
  let out = encodedWords ? decodeHeaderText(value) : value;
  out = out
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (out.length > MAX_TEXT) out = `${out.slice(0, MAX_TEXT - 1)}…`;
  return out.length > 0 ? out : undefined;
}

/** A part's file name: Content-Disposition filename (RFC 2183, RFC 2231), else Content-Type name. */
function attachmentName(
  headers: Record<string, string[]>,
  type: ReturnType<typeof parseParams>,
): string | undefined {
  const disposition = parseParams(first(headers, 'content-disposition'));
  for (const [p, key] of [
    [disposition, 'filename'],
    [type, 'name'],
  ] as const) {
    const raw = p?.params[key];
    if (raw === undefined) continue;
    // Parameters assembled from RFC 2231 segments are already decoded; plain ones may hold RFC 2047.
    const name = text(raw, !p?.decodedParams.includes(key));
    if (name !== undefined) return name;
  }
  return undefined;
}

function messageId(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = /<([^<>]*)>/.exec(value);
  const id = decodeRaw(m?.[1] ?? value).replace(/\s+/g, '');
  return id.length > 0 && id.length <= 998 ? id : undefined;
}

/** The Date header (RFC 5322 §3.3) as ISO 8601 UTC, or undefined when it does not parse. */
export function parseMailDate(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const cleaned = value
    .replace(/\([^)]*\)/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  for (const candidate of [cleaned, cleaned.replace(/^[A-Za-z]+,?\s*/, '')]) {
    const t = Date.parse(candidate);
    if (Number.isFinite(t) && t > Date.UTC(1970, 0, 1) && t < Date.UTC(2200, 0, 1))
      return new Date(t).toISOString();
  }
  return undefined;
}

function summarize(headers: Record<string, string[]>, attachments: string[]): HeaderSummary {
  const all = (key: string): string | undefined => {
    const v = Object.hasOwn(headers, key) ? headers[key] : undefined;
    return v === undefined || v.length === 0 ? undefined : v.join(', ');
  };
  const summary: HeaderSummary = {};
  const put = <K extends keyof HeaderSummary>(k: K, v: HeaderSummary[K] | undefined): void => {
    if (v !== undefined) summary[k] = v;
  };
  put('messageId', messageId(first(headers, 'message-id')));
  put('from', text(first(headers, 'from')));
  put('to', text(all('to')));
  put('cc', text(all('cc')));
  put('subject', text(first(headers, 'subject')));
  put('date', parseMailDate(first(headers, 'date')));
  if (attachments.length > 0) put('attachments', [...attachments]);
  return summary;
}
