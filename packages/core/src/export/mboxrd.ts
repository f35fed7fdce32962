/**
 * mboxrd (RFC 4155 and the mboxrd convention): how messages are written into, and recovered from,
 * one mbox file per folder. Pure functions.
 *
 * Each message is: the separator line `From <sender> <asctime date>\n`, the message's bytes with every
 * line that matches /^>*From / given one more ">" (quoting), then one "\n" that ends the message (the
 * blank line before the next separator, which readers strip). mboxrd unquoting (remove one ">" from
 * every line matching /^>+From /) gives the exact bytes back, whatever ">From" lines the message had.
 *
 * A message whose bytes do not end with a line feed cannot be told apart from one that does once it
 * sits in an mbox: such a message is written with "\n\n" after it, so a reader that strips one "\n"
 * gets the bytes plus one "\n". manifest.jsonl gives each message's exact `size`: cut there for the
 * exact bytes (mailark verify-export does).
 *
 * Lines are split on "\n" only (a CRLF line is a line ending in "\r"), as every mbox reader does.
 * The sender is the Return-Path address, else the From address, else MAILER-DAEMON; the date is the
 * internal date in UTC.
 *
 * Optional status headers (export option mboxStatusHeaders): three lines prepended to the message,
 * always all three, in this order, with the message's own line ending: `Status: ` (R seen, O old),
 * `X-Status: ` (A answered, F flagged, T draft, D deleted) and `X-Keywords: ` (keywords separated by
 * spaces), as mutt and Dovecot's mbox read them. The exact bytes are then the message minus those
 * three lines. Off by default: the default mbox holds the exact bytes.
 */

const FROM = Buffer.from('From ');
const NL = 0x0a;
const GT = 0x3e;

/** Inserts one ">" before every line that matches /^>*From /. Returns the input when nothing matches. */
export function mboxrdQuote(bytes: Uint8Array): Uint8Array {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at: number[] = [];
  for (let i = buf.indexOf(FROM); i >= 0; i = buf.indexOf(FROM, i + 1)) {
    let j = i - 1;
    while (j >= 0 && buf[j] === GT) j--;
    if (j < 0 || buf[j] === NL) at.push(j + 1);
  }
  return insertAt(buf, at, [GT]);
}

/** Removes one ">" from every line that matches /^>+From / (the inverse of mboxrdQuote). */
export function mboxrdUnquote(bytes: Uint8Array): Uint8Array {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cut: number[] = [];
  for (let i = buf.indexOf(FROM); i >= 0; i = buf.indexOf(FROM, i + 1)) {
    let j = i - 1;
    while (j >= 0 && buf[j] === GT) j--;
    if (j < i - 1 && (j < 0 || buf[j] === NL)) cut.push(j + 1);
  }
  if (cut.length === 0) return bytes;
  const parts: Buffer[] = [];
  let from = 0;
  for (const c of cut) {
    parts.push(buf.subarray(from, c));
    from = c + 1;
  }
  parts.push(buf.subarray(from));
  return Buffer.concat(parts);
}

function insertAt(buf: Buffer, positions: number[], insert: number[]): Uint8Array {
  if (positions.length === 0) return buf;
  const ins = Buffer.from(insert);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of positions) {
    parts.push(buf.subarray(from, p), ins);
    from = p;
  }
  parts.push(buf.subarray(from));
  return Buffer.concat(parts);
}

/** What follows a message's quoted bytes: "\n", or "\n\n" when it does not end with a line feed. */
export function mboxTerminator(bytes: Uint8Array): string {
  return bytes.byteLength > 0 && bytes[bytes.byteLength - 1] === NL ? '\n' : '\n\n';
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** C asctime() of a date in UTC: "Thu Jan  4 09:05:00 2024". */
export function asctime(date: Date): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${String(date.getUTCDate()).padStart(2, ' ')} ` +
    `${p2(date.getUTCHours())}:${p2(date.getUTCMinutes())}:${p2(date.getUTCSeconds())} ${date.getUTCFullYear()}`
  );
}

/** Parses the asctime part of a separator line back to a Date (UTC); undefined when malformed. */
export function parseAsctime(text: string): Date | undefined {
  const m = /^(\w{3}) (\w{3}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})$/.exec(text);
  if (m === null) return undefined;
  const month = MONTHS.indexOf(m[2] as string);
  if (month < 0) return undefined;
  return new Date(
    Date.UTC(Number(m[7]), month, Number((m[3] as string).trim()), Number(m[4]), Number(m[5]), Number(m[6])),
  );
}

/** The separator line, newline included. */
export function mboxFromLine(sender: string, internalDate: string): string {
  const ms = Date.parse(internalDate);
  return `From ${sender} ${asctime(new Date(Number.isNaN(ms) ? 0 : ms))}\n`;
}

/** Splits a separator line ("From a@b Thu Jan  4 09:05:00 2024", no newline) into sender and date. */
export function parseFromLine(line: string): { sender: string; date?: Date } | undefined {
  const m = /^From (\S*) +(.*?)\r?$/.exec(line);
  if (m === null) return undefined;
  const date = parseAsctime(m[2] as string);
  return date === undefined ? { sender: m[1] as string } : { sender: m[1] as string, date };
}

/**
 * The envelope sender for the separator line: Return-Path, else From, else MAILER-DAEMON. Only the
 * header block is read (at most 64 KiB); the result never holds spaces or control characters.
 */
export function mboxSender(bytes: Uint8Array): string {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 65536)).toString(
    'latin1',
  );
  const end = head.search(/\r?\n\r?\n/);
  const unfolded = (end < 0 ? head : head.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  for (const name of ['return-path', 'from']) {
    const m = new RegExp(`^${name}:(.*)$`, 'im').exec(unfolded);
    if (m === null) continue;
    const value = m[1] as string;
    if (name === 'return-path' && /<\s*>/.test(value)) return 'MAILER-DAEMON';
    const addr = /<([^<>\s]+)>/.exec(value)?.[1] ?? /([^\s<>"(),;:]+@[^\s<>"(),;:]+)/.exec(value)?.[1];
    if (addr !== undefined && /^[\x21-\x7e]+$/.test(addr)) return addr;
  }
  return 'MAILER-DAEMON';
}

/** The three status header lines (see the module comment), with the message's line ending. */
export function mboxStatusBlock(
  bytes: Uint8Array,
  flags: readonly string[],
  keywords: readonly string[],
): string {
  const nl = firstLineEnding(bytes);
  const status = `${flags.includes('\\Seen') ? 'R' : ''}O`;
  const x = [
    ['\\Answered', 'A'],
    ['\\Flagged', 'F'],
    ['\\Draft', 'T'],
    ['\\Deleted', 'D'],
  ]
    .filter(([f]) => flags.includes(f as string))
    .map(([, l]) => l)
    .join('');
  return `Status: ${status}${nl}X-Status: ${x}${nl}X-Keywords: ${keywords.join(' ')}${nl}`;
}

/** "\r\n" when the message's first line ends with CRLF, else "\n". */
export function firstLineEnding(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nl = buf.indexOf(NL);
  return nl > 0 && buf[nl - 1] === 0x0d ? '\r\n' : '\n';
}

/** Parses the values of a status block's three lines; undefined when the lines are not one. */
export function parseStatusBlock(
  lines: readonly string[],
): { seen: boolean; xstatus: string; keywords: string[] } | undefined {
  const [s, x, k] = lines.map((l) => l.replace(/\r?\n$/, ''));
  if (s === undefined || x === undefined || k === undefined) return undefined;
  const sm = /^Status: (R?)O$/.exec(s);
  const xm = /^X-Status: ([AFTD]*)$/.exec(x);
  const km = /^X-Keywords: ?(.*)$/.exec(k);
  if (sm === null || xm === null || km === null) return undefined;
  const kw = (km[1] as string).split(' ').filter((w) => w !== '');
  return { seen: sm[1] === 'R', xstatus: xm[1] as string, keywords: kw };
}
