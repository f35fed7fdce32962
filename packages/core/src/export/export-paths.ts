/**
 * Where each thing lives inside an export (a directory or an archive), one function per kind of path,
 * so the writers and verify-export can never disagree. Pure functions.
 *
 *   manifest.jsonl  folders.jsonl  export.json  README.txt  SHA256SUMS       (archive root)
 *   <tenant>/<user>/Maildir/...                     Maildir++ (maildir-layout.ts)
 *   <tenant>/<user>/mbox/<folder path>.mbox         one mboxrd file per folder
 *   <tenant>/<user>/eml/<folder path>/<uid>.eml     one file per message, named by its UID
 *
 * Names outside Maildir are kept as Unicode (UTF-8 in tar, zip and on disk), one directory per
 * folder level, made safe for every file system by portableName: "%", "/", "\", ":", "*", "?", '"',
 * "<", ">", "|" and control characters become %XX (UTF-8 bytes, upper-case hex), as do a leading dot,
 * a trailing dot or space, the first letter of a Windows device name (CON, NUL, COM1...), and in a
 * folder level the dot of a final ".mbox" or ".eml" (so a folder named "2.eml" cannot be mistaken for
 * message 2, nor "A.mbox" for folder A's mbox file). An empty level is written "%00". Decoding any
 * %XX back gives the exact name.
 */
import { folderLevels, maildirFolderDir } from './maildir-layout.js';

export type ExportFormat = 'maildir' | 'mbox' | 'eml';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['maildir', 'mbox', 'eml'];

export const MANIFEST_FILE = 'manifest.jsonl';
export const FOLDERS_FILE = 'folders.jsonl';
export const INFO_FILE = 'export.json';
export const README_FILE = 'README.txt';
export const SUMS_FILE = 'SHA256SUMS';
export const ROOT_FILES: readonly string[] = [MANIFEST_FILE, FOLDERS_FILE, INFO_FILE, README_FILE, SUMS_FILE];

const UNSAFE = /[%/\\:*?"<>|\u0000-\u001f\u007f]/u;
const DEVICE = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$/i;

function hex(ch: string): string {
  return [...Buffer.from(ch, 'utf8')]
    .map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`)
    .join('');
}

/** A file or directory name safe on every file system (see the module comment). */
export function portableName(name: string): string {
  if (name === '') return '%00';
  const chars = [...name].map((ch) => (UNSAFE.test(ch) ? hex(ch) : ch));
  if (chars[0] === '.') chars[0] = '%2E';
  const last = chars.length - 1;
  if (chars[last] === '.' || chars[last] === ' ') chars[last] = hex(chars[last] as string);
  if (DEVICE.test(name)) chars[0] = hex(chars[0] as string);
  return chars.join('');
}

/** Decodes %XX sequences (the inverse of portableName and folderFsPath levels). */
export function unportableName(name: string): string {
  if (name === '%00') return '';
  return decodeURIComponent(name.replace(/%(?![0-9A-Fa-f]{2})/g, '%25'));
}

/** One folder level as a directory name: portableName, and a final ".mbox"/".eml" loses its dot. */
function portableLevel(level: string): string {
  const p = portableName(level);
  const m = /\.(mbox|eml)$/i.exec(p);
  return m === null ? p : `${p.slice(0, m.index)}%2E${m[1]}`;
}

/** The folder's path as directories: "Projets/Été 2024" → "Projets/Été 2024". */
export function folderFsPath(path: string, delimiter: string): string {
  return folderLevels(path, delimiter).map(portableLevel).join('/');
}

export interface FolderRef {
  path: string;
  delimiter: string;
}

/** `<tenant>/<user>`: the user's part of the export. */
export function userRoot(tenant: string, user: string): string {
  return `${portableName(tenant)}/${portableName(user)}`;
}

/** The user's Maildir root (INBOX lives here). */
export function maildirRoot(tenant: string, user: string): string {
  return `${userRoot(tenant, user)}/Maildir`;
}

/** A folder's Maildir directory (the Maildir root for INBOX). */
export function maildirFolderPath(tenant: string, user: string, folder: FolderRef): string {
  const dir = maildirFolderDir(folder.path, folder.delimiter);
  return dir === '' ? maildirRoot(tenant, user) : `${maildirRoot(tenant, user)}/${dir}`;
}

export function mboxPath(tenant: string, user: string, folder: FolderRef): string {
  return `${userRoot(tenant, user)}/mbox/${folderFsPath(folder.path, folder.delimiter)}.mbox`;
}

export function emlFolderPath(tenant: string, user: string, folder: FolderRef): string {
  return `${userRoot(tenant, user)}/eml/${folderFsPath(folder.path, folder.delimiter)}`;
}

export function emlPath(tenant: string, user: string, folder: FolderRef, uid: number): string {
  return `${emlFolderPath(tenant, user, folder)}/${uid}.eml`;
}

/** Which part of an export a path belongs to, as verify-export sorts what it reads. */
export type ExportPathKind =
  | { kind: 'root'; name: string }
  | { kind: 'maildir'; root: string; rest: string }
  | { kind: 'mbox'; root: string; rest: string }
  | { kind: 'eml'; root: string; rest: string }
  | { kind: 'other' };

/** Classifies a path of an export (`<tenant>/<user>/<format dir>/<rest>`). */
export function classifyExportPath(path: string): ExportPathKind {
  if (!path.includes('/'))
    return ROOT_FILES.includes(path) ? { kind: 'root', name: path } : { kind: 'other' };
  const parts = path.split('/');
  if (parts.length < 4) return { kind: 'other' };
  const root = `${parts[0]}/${parts[1]}`;
  const rest = parts.slice(3).join('/');
  switch (parts[2]) {
    case 'Maildir':
      return { kind: 'maildir', root, rest };
    case 'mbox':
      return { kind: 'mbox', root, rest };
    case 'eml':
      return { kind: 'eml', root, rest };
    default:
      return { kind: 'other' };
  }
}
