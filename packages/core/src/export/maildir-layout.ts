/**
 * Maildir++ names, as Dovecot and Courier read them: folder directories, message file names, and the
 * small control files (dovecot-keywords, dovecot-uidlist, subscriptions). Pure functions.
 *
 * Folders: INBOX is the Maildir root; any other folder is `.<c1>.<c2>...` where each ci is one level
 * of the folder's path, escaped then spelled in modified UTF-7 ("Projets/Été 2024" →
 * `.Projets.&AMk-t&AOk- 2024`). "." is Maildir++'s hierarchy separator, so a "." inside a name is
 * escaped the way Dovecot's listescape plugin does (escape character "\", two lowercase hex digits):
 * "." → `\2e`, "\" → `\5c`, "/" → `\2f`, and "~" at the start of a level → `\7e`. A Dovecot with
 * `mail_plugins = $mail_plugins listescape` shows those folders under their real names; without the
 * plugin Dovecot refuses "." in names anyway, and shows such a folder as e.g. "v1\2e2".
 *
 * Messages: `cur/<seconds>.U<uid>.mailark,S=<size>:2,<flags>` where seconds is the internal date
 * (also the file's mtime), S= the exact size, and flags in ASCII order: D draft, F flagged,
 * P passed (the $Forwarded keyword), R replied (\Answered), S seen, T trashed (\Deleted), then one
 * lowercase letter per keyword, a..z as numbered in the folder's `dovecot-keywords` (Maildir allows 26
 * per folder; further keywords stay in manifest.jsonl only). `dovecot-uidlist` keeps the UIDs and the
 * UIDVALIDITY, so a Dovecot serving the export presents the same UIDs (mail clients need no resync).
 */
import { encodeModifiedUtf7 } from './modified-utf7.js';

/** IMAP system flag → Maildir info letter (maildir(5)). */
const FLAG_LETTERS: ReadonlyArray<readonly [string, string]> = [
  ['\\Draft', 'D'],
  ['\\Flagged', 'F'],
  ['\\Answered', 'R'],
  ['\\Seen', 'S'],
  ['\\Deleted', 'T'],
];
/** Maildir's P ("passed": resent, forwarded, bounced) mirrors this keyword. */
export const PASSED_KEYWORD = '$Forwarded';
/** Keyword letters a..z: Dovecot's limit per folder in file names. */
export const MAX_KEYWORD_LETTERS = 26;

/** Escapes one level of a folder name as Dovecot's listescape plugin does (see the module comment). */
export function escapeMaildirLevel(level: string): string {
  let out = '';
  for (const [i, ch] of [...level].entries()) {
    if (ch === '.' || ch === '\\' || ch === '/' || (i === 0 && ch === '~')) {
      out += `\\${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    } else {
      out += ch;
    }
  }
  return out;
}

/** Undoes escapeMaildirLevel (for readers of an export). */
export function unescapeMaildirLevel(level: string): string {
  return level.replace(/\\([0-9a-fA-F]{2})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

/** The levels of a folder path ("" delimiter: a flat name is one level). */
export function folderLevels(path: string, delimiter: string): string[] {
  return delimiter === '' ? [path] : path.split(delimiter);
}

/** The folder's directory inside the Maildir: "" for INBOX, else ".A.B" (see the module comment). */
export function maildirFolderDir(path: string, delimiter: string): string {
  if (path.toUpperCase() === 'INBOX') return '';
  const levels = folderLevels(path, delimiter).map((l) => encodeModifiedUtf7(escapeMaildirLevel(l)));
  return `.${levels.join('.')}`;
}

/** The storage name Dovecot writes in `subscriptions` (version 2): levels joined by a tab. */
export function subscriptionName(path: string, delimiter: string): string {
  if (path.toUpperCase() === 'INBOX') return 'INBOX';
  return folderLevels(path, delimiter)
    .map((l) => encodeModifiedUtf7(escapeMaildirLevel(l)))
    .join('\t');
}

/** Dovecot's `subscriptions` file (version 2 header, then one name per line). */
export function subscriptionsFile(names: readonly string[]): string {
  return `V\t2\n\n${names.map((n) => `${n}\n`).join('')}`;
}

/**
 * Keyword → letter for one folder: the first 26 keywords (in the order given; callers pass them
 * sorted) get a..z; the rest are `overflow`.
 */
export function keywordLetters(keywords: readonly string[]): {
  letters: Map<string, string>;
  overflow: string[];
} {
  const letters = new Map<string, string>();
  const overflow: string[] = [];
  for (const k of keywords) {
    if (letters.has(k)) continue;
    if (letters.size < MAX_KEYWORD_LETTERS) letters.set(k, String.fromCharCode(0x61 + letters.size));
    else overflow.push(k);
  }
  return { letters, overflow };
}

/** The `dovecot-keywords` file: "<index> <keyword>" per line, index 0 = letter a. */
export function dovecotKeywordsFile(letters: ReadonlyMap<string, string>): string {
  return [...letters].map(([k, l]) => `${l.charCodeAt(0) - 0x61} ${k}\n`).join('');
}

/** Parses a `dovecot-keywords` file into letter → keyword. */
export function parseDovecotKeywords(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+) (.+)$/.exec(line);
    if (m === null) continue;
    const idx = Number(m[1]);
    if (idx < MAX_KEYWORD_LETTERS) out.set(String.fromCharCode(0x61 + idx), m[2] as string);
  }
  return out;
}

/** The info part after ":2,": system flag letters, P, then keyword letters, in ASCII order. */
export function maildirInfo(
  flags: readonly string[],
  keywords: readonly string[],
  letters: ReadonlyMap<string, string>,
): string {
  const out: string[] = [];
  for (const [flag, letter] of FLAG_LETTERS) if (flags.includes(flag)) out.push(letter);
  if (keywords.includes(PASSED_KEYWORD)) out.push('P');
  for (const k of keywords) {
    const l = letters.get(k);
    if (l !== undefined) out.push(l);
  }
  return [...new Set(out)].sort().join('');
}

/**
 * Decodes an info string back to flags and keywords, given letter → keyword (parseDovecotKeywords).
 * P is reported as `passed`: the $Forwarded keyword carries its own letter.
 */
export function parseMaildirInfo(
  info: string,
  keywordsByLetter: ReadonlyMap<string, string>,
): { flags: string[]; keywords: string[]; passed: boolean; unknown: string[] } {
  const flags: string[] = [];
  const keywords: string[] = [];
  const unknown: string[] = [];
  let passed = false;
  for (const ch of info) {
    const flag = FLAG_LETTERS.find(([, l]) => l === ch)?.[0];
    if (flag !== undefined) flags.push(flag);
    else if (ch === 'P') passed = true;
    else if (keywordsByLetter.has(ch)) keywords.push(keywordsByLetter.get(ch) as string);
    else unknown.push(ch);
  }
  return { flags: flags.sort(), keywords: keywords.sort(), passed, unknown };
}

/** The base name (before ":2,"): `<seconds>.U<uid>.mailark,S=<size>`. */
export function maildirBaseName(uid: number, internalDate: string, size: number): string {
  const ms = Date.parse(internalDate);
  const secs = Number.isNaN(ms) ? 0 : Math.max(0, Math.floor(ms / 1000));
  return `${secs}.U${uid}.mailark,S=${size}`;
}

/** The whole file name: base + ":2," + info. */
export function maildirFileName(
  entry: {
    uid: number;
    internalDate: string;
    size: number;
    flags: readonly string[];
    keywords: readonly string[];
  },
  letters: ReadonlyMap<string, string>,
): string {
  return `${maildirBaseName(entry.uid, entry.internalDate, entry.size)}:2,${maildirInfo(entry.flags, entry.keywords, letters)}`;
}

export interface ParsedMaildirName {
  base: string;
  /** The seconds at the start of the unique part, when numeric. */
  seconds?: number;
  /** The UID mailark wrote into the unique part (".U<uid>."), when present. */
  uid?: number;
  /** S=<size>, when present. */
  size?: number;
  /** The info after ":2,", "" when there is none. */
  info: string;
}

/** Splits any Maildir file name (mailark's or another tool's). */
export function parseMaildirFileName(name: string): ParsedMaildirName {
  const colon = name.indexOf(':2,');
  const base = colon < 0 ? name : name.slice(0, colon);
  const info = colon < 0 ? '' : name.slice(colon + 3);
  const out: ParsedMaildirName = { base, info };
  const secs = /^(\d+)\./.exec(base);
  if (secs !== null) out.seconds = Number(secs[1]);
  const uid = /^\d+\.U(\d+)\.mailark(?:,|$)/.exec(base);
  if (uid !== null) out.uid = Number(uid[1]);
  const size = /,S=(\d+)(?:,|$)/.exec(base);
  if (size !== null) out.size = Number(size[1]);
  return out;
}

/**
 * The first line of `dovecot-uidlist` (version 3): UIDVALIDITY and the next UID. Dovecot adds its
 * mailbox GUID (G...) itself on first access.
 */
export function dovecotUidlistHeader(uidValidity: string, nextUid: number): string {
  return `3 V${uidValidity} N${nextUid}\n`;
}

/** One record of `dovecot-uidlist`: "<uid> :<base name>". */
export function dovecotUidlistLine(uid: number, baseName: string): string {
  return `${uid} :${baseName}\n`;
}
