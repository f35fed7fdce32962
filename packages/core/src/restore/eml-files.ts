/**
 * `restore --eml DIR`: messages written as .eml files instead of APPENDed, for support staff who
 * forward them. Each file holds the exact bytes of the snapshot (verified by SHA-256 on read) and
 * has its mtime set to the message's internal date.
 *
 * File names are safe on every file system and stable: `<date>_<time>_<subject>_<sha8>.eml`, ASCII
 * letters, digits, `-` and `_` only (accents folded, the rest dropped), at most ~90 characters, e.g.
 * `2026-11-21_0815_Facture-42-Ete_3fa2b1c9.eml`. The SHA-256 prefix keeps two different messages
 * apart; the same message twice is the same file. So a re-run is idempotent: an existing file with
 * the same bytes is 'already-present', one with other bytes is never overwritten ('failed').
 * Files are written to a temporary name and renamed, so a reader never sees half a message.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorText, MailarkError } from '../errors.js';
import type { MessageEntry } from '../mail/snapshot.js';
import { readMessageBytes, type TreeReader } from '../mail/snapshot-tree.js';
import { digestHex } from './restore-plan.js';

/** A file name for a message: see the module comment. */
export function emlFileName(entry: Pick<MessageEntry, 'internalDate' | 'sha256' | 'h'>): string {
  const d = new Date(entry.internalDate);
  const pad = (n: number) => String(n).padStart(2, '0');
  // UTC: the name must not depend on the time zone of whoever runs the restore.
  const stamp = Number.isNaN(d.getTime())
    ? 'undated'
    : `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}_${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}`;
  const subject = slug(entry.h.subject ?? '') || 'no-subject';
  return `${stamp}_${subject}_${entry.sha256.slice(0, 8)}.eml`;
}

/** "Facture n° 42 — Été!" -> "Facture-n-42-Ete", at most 60 characters. */
function slug(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // combining accents, after decomposition
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '');
}

export interface EmlOutcome {
  status: 'restored' | 'already-present' | 'failed' | 'would-restore';
  file: string;
  error?: MailarkError;
}

/** Writes one message into dir (created if missing). Never throws for the message itself: see status. */
export async function writeEmlFile(
  repo: TreeReader,
  entry: MessageEntry,
  dir: string,
  opts: { dryRun?: boolean } = {},
): Promise<EmlOutcome> {
  const file = join(dir, emlFileName(entry));
  try {
    const existing = await readFile(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (existing !== undefined) {
      if (digestHex(existing) === entry.sha256) return { status: 'already-present', file };
      return {
        status: 'failed',
        file,
        error: new MailarkError('STORE_IO', `${file} exists with other content; not overwritten`, {
          hint: 'move it away, or restore into another --eml directory',
        }),
      };
    }
    if (opts.dryRun === true) return { status: 'would-restore', file };
    const bytes = await readMessageBytes(repo, entry);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeFile(tmp, bytes, { flag: 'wx' });
      const when = new Date(entry.internalDate);
      await utimes(tmp, when, when);
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return { status: 'restored', file };
  } catch (err) {
    const error =
      err instanceof MailarkError
        ? err
        : new MailarkError('STORE_IO', `cannot write ${file}: ${errorText(err)}`, {
            hint: 'check that the --eml directory is writable and has free space',
            cause: err,
          });
    return { status: 'failed', file, error };
  }
}
