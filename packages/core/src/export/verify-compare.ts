/**
 * verify-export's comparisons, as pure functions: one thing read from the export (a Maildir file, an
 * EML file, an mbox message, a manifest or folders line) against what the snapshot says it must be.
 * Each returns the differences it finds, each naming the file and the message.
 */
import type { MessageEntry } from '../mail/snapshot.js';
import { type ExportFormat, FOLDERS_FILE, MANIFEST_FILE } from './export-paths.js';
import { maildirFileName, PASSED_KEYWORD, parseMaildirInfo } from './maildir-layout.js';
import type { FolderLine, ManifestLine } from './manifest.js';
import type { MboxMessage } from './mbox-reader.js';
import type { ExportDifference } from './verify-export.js';
import type { ExpectedMessage, PlannedFolder } from './verify-plan.js';

export type WithLetters = ExpectedMessage & { letters: Map<string, string> };

export interface MaildirSeen {
  path: string;
  sha256: string;
  size: number;
  nameSize?: number;
  info: string;
  mtime: Date;
  byLetter: Map<string, string>;
}

export interface FileSeen {
  path: string;
  sha256: string;
  size: number;
  mtime: Date;
}

const secs = (d: Date | string) => Math.floor((typeof d === 'string' ? Date.parse(d) : d.getTime()) / 1000);

/** A Maildir message file against its snapshot entry: bytes, S=, flags and keyword letters, mtime. */
export function compareMaildir(e: WithLetters, a: MaildirSeen): ExportDifference[] {
  const out = compareFile('maildir', e, a);
  const where = { format: 'maildir' as const, ...ids(e), path: a.path };
  if (a.nameSize !== e.entry.size) {
    out.push({
      kind: 'content',
      ...where,
      message: `${a.path}: S=${a.nameSize} in the name, the message has ${e.entry.size} bytes`,
    });
  }
  const got = parseMaildirInfo(a.info, a.byLetter);
  const wantKeywords = e.entry.keywords.filter((k) => e.letters.has(k));
  const wantPassed = e.entry.keywords.includes(PASSED_KEYWORD);
  if (
    got.flags.join(' ') !== e.entry.flags.join(' ') ||
    got.keywords.join(' ') !== [...wantKeywords].sort().join(' ') ||
    got.passed !== wantPassed ||
    got.unknown.length > 0
  ) {
    const want = maildirFileName(e.entry, e.letters).split(':2,')[1];
    out.push({
      kind: 'flags',
      ...where,
      message: `${a.path}: flags "${a.info}" mean ${[...got.flags, ...got.keywords].join(' ') || 'none'}, the snapshot has ${[...e.entry.flags, ...e.entry.keywords].join(' ') || 'none'} ("${want}")`,
    });
  }
  return out;
}

/** A message file (EML, Maildir) against its entry: exact bytes and mtime = internal date (to the second). */
export function compareFile(format: ExportFormat, e: ExpectedMessage, a: FileSeen): ExportDifference[] {
  const out: ExportDifference[] = [];
  const where = { format, ...ids(e), path: a.path };
  if (a.sha256 !== e.entry.sha256 || a.size !== e.entry.size) {
    out.push({
      kind: 'content',
      ...where,
      message: `${a.path}: ${a.size} bytes with SHA-256 ${a.sha256}, the message has ${e.entry.size} bytes with ${e.entry.sha256}`,
    });
  }
  if (secs(a.mtime) !== secs(e.entry.internalDate)) {
    out.push({
      kind: 'date',
      ...where,
      message: `${a.path}: file time ${a.mtime.toISOString()}, internal date ${e.entry.internalDate}`,
    });
  }
  return out;
}

/** An mbox message against its entry: exact bytes (either candidate), separator date, status lines. */
export function compareMbox(
  e: ExpectedMessage,
  a: MboxMessage & { path: string },
  statusHeaders: boolean,
): ExportDifference[] {
  const out: ExportDifference[] = [];
  const where = { format: 'mbox' as const, ...ids(e), path: a.path };
  const at = `${a.path} message #${a.index + 1} (offset ${a.offset})`;
  const exact = a.candidates.some((c) => c.size === e.entry.size && c.sha256 === e.entry.sha256);
  if (!exact)
    out.push({
      kind: 'content',
      ...where,
      message: `${at}: its bytes are not those of UID ${e.entry.uid} (${e.entry.sha256})`,
    });
  if (a.date === undefined || secs(a.date) !== secs(e.entry.internalDate)) {
    out.push({
      kind: 'date',
      ...where,
      message: `${at}: separator line "${a.fromLine.slice(0, 120)}" does not give internal date ${e.entry.internalDate}`,
    });
  }
  if (statusHeaders) {
    const f = e.entry.flags;
    const x = [
      ['\\Answered', 'A'],
      ['\\Flagged', 'F'],
      ['\\Draft', 'T'],
      ['\\Deleted', 'D'],
    ]
      .filter(([k]) => f.includes(k as string))
      .map(([, l]) => l)
      .join('');
    const s = a.status;
    if (
      s == null ||
      s.seen !== f.includes('\\Seen') ||
      s.xstatus !== x ||
      s.keywords.join(' ') !== e.entry.keywords.join(' ')
    ) {
      out.push({
        kind: 'flags',
        ...where,
        message: `${at}: Status/X-Status/X-Keywords do not match flags ${[...f, ...e.entry.keywords].join(' ') || 'none'}`,
      });
    }
  }
  return out;
}

/** A manifest.jsonl line against its entry: every fact, and the paths the writers use. */
export function compareManifestLine(
  e: WithLetters,
  a: ManifestLine,
  formats: readonly ExportFormat[],
): ExportDifference[] {
  const out: ExportDifference[] = [];
  const f = e.folder;
  const want: Partial<ManifestLine> = {
    folderRaw: f.node.rawPath,
    delimiter: f.node.delimiter,
    flags: e.entry.flags,
    keywords: e.entry.keywords,
    size: e.entry.size,
    sha256: e.entry.sha256,
    ...(f.node.uidValidity === undefined ? {} : { uidValidity: f.node.uidValidity }),
  };
  const bad = Object.entries(want)
    .filter(([k, v]) => JSON.stringify(a[k as keyof ManifestLine]) !== JSON.stringify(v))
    .map(([k]) => k);
  if (Date.parse(a.internalDate) !== Date.parse(e.entry.internalDate)) bad.push('internalDate');
  const paths: Partial<Record<ExportFormat, string>> = {};
  if (formats.includes('maildir'))
    paths.maildir = `${f.maildirDir}/cur/${maildirFileName(e.entry, e.letters)}`;
  if (formats.includes('mbox')) paths.mbox = f.mboxFile;
  if (formats.includes('eml')) paths.eml = `${f.emlDir}/${e.entry.uid}.eml`;
  for (const fmt of formats) if (a.paths?.[fmt] !== paths[fmt]) bad.push(`paths.${fmt}`);
  if (bad.length > 0) {
    out.push({
      kind: 'manifest',
      ...ids(e),
      path: MANIFEST_FILE,
      message: `${MANIFEST_FILE}: ${f.user} ${f.node.path} UID ${e.entry.uid}: ${bad.join(', ')} differ from the snapshot`,
    });
  }
  return out;
}

/** A folders.jsonl line against its folder node. */
export function compareFolderLine(f: PlannedFolder, a: FolderLine): ExportDifference[] {
  const out: ExportDifference[] = [];
  const n = f.node;
  const want = {
    folderRaw: n.rawPath,
    delimiter: n.delimiter,
    selectable: n.selectable,
    subscribed: n.subscribed,
    specialUse: n.specialUse,
    uidValidity: n.uidValidity,
    messages: n.selectable ? n.messages : 0,
    bytes: n.selectable ? n.bytes : 0,
  };
  const bad = Object.entries(want)
    .filter(([k, v]) => a[k as keyof FolderLine] !== v)
    .map(([k]) => k);
  if (bad.length > 0) {
    out.push({
      kind: 'folders',
      user: f.user,
      folder: n.path,
      path: FOLDERS_FILE,
      message: `${FOLDERS_FILE}: ${f.user} ${n.path}: ${bad.join(', ')} differ from the snapshot`,
    });
  }
  return out;
}

/** Who a difference is about. */
export function ids(e: ExpectedMessage): { user: string; folder: string; uid: number } {
  return { user: e.folder.user, folder: e.folder.node.path, uid: (e.entry as MessageEntry).uid };
}
