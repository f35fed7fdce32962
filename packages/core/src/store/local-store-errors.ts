/**
 * Local file-system failures as MailarkErrors, in one pure function (unit-tested without a disk).
 *
 * The rule it keeps: the code says what the user must fix and the hint says how; conditions a retry
 * cannot fix (disk full, permission denied, read-only) carry `details.transient = false` so the
 * retrying store does not hammer them.
 */
import { MailarkError } from '../errors.js';

/** The errno code of a Node file-system error ('ENOENT' …), if any. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Maps a Node file-system error to a MailarkError (pure: unit-tested). MailarkErrors pass through.
 * Permanent conditions carry `details.transient = false` so the retrying store does not retry them.
 */
export function localStoreError(err: unknown, op: string, key: string, location: string): MailarkError {
  if (err instanceof MailarkError) return err;
  const code = errnoOf(err);
  const what = `${op} ${key} in ${location}`;
  const details = (transient: boolean) => ({ op, key, errno: code, transient });
  if (op === 'put' && (code === 'EEXIST' || code === 'ENOTDIR')) {
    // mkdir met a file where a directory belongs (the link's own EEXIST is OBJECT_EXISTS, raised earlier).
    return new MailarkError('STORE_IO', `${what} failed: a parent of ${key} is a file, not a directory`, {
      cause: err,
      // Not just "run mailark check": for a location that is a plain file, check says "no repository".
      hint:
        `a file sits where ${location} needs a directory: choose a location that is a directory (or ` +
        `does not exist yet); if ${location} is a repository, "mailark check" names the damage`,
      details: details(false),
    });
  }
  if (op === 'put' && code === 'ENOENT') {
    // mkdir under a directory that exists but takes no new entries (/proc, some FUSE file systems).
    return new MailarkError('STORE_IO', `${what} failed: its directory cannot be created there`, {
      cause: err,
      hint: `choose a repository location on an ordinary writable file system, not ${location}`,
      details: details(false),
    });
  }
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'EISDIR': // the key names a directory of other objects, not an object
      if (op === 'put') break;
      return new MailarkError('OBJECT_NOT_FOUND', `object ${key} not found in ${location}`, {
        cause: err,
        details: details(false),
      });
    case 'ENOSPC':
    case 'EDQUOT':
      return new MailarkError('STORE_IO', `${what} failed: no space left on the device`, {
        cause: err,
        hint: `free space on the file system holding ${location} (or run "mailark prune"), then retry`,
        details: details(false),
      });
    case 'EACCES':
    case 'EPERM':
      return new MailarkError('STORE_IO', `${what} failed: permission denied`, {
        cause: err,
        hint: `give the user running mailark read and write access to ${location}`,
        details: details(false),
      });
    case 'EROFS':
      return new MailarkError('STORE_IO', `${what} failed: the file system is read-only`, {
        cause: err,
        hint: `remount ${location} read-write, or choose another repository location`,
        details: details(false),
      });
    case 'EEXIST':
      return new MailarkError('OBJECT_EXISTS', `object ${key} already exists in ${location}`, { cause: err });
  }
  return new MailarkError('STORE_IO', `${what} failed: ${code ?? (err as Error)?.message ?? String(err)}`, {
    cause: err,
    hint: `check the disk and file system holding ${location} (dmesg, df -h)`,
    details: details(true),
  });
}
