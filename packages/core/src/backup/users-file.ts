/**
 * The users file: the mailboxes of a tenant, one per line, `user[,password-file]`, `#` comments.
 *
 *   alice@acme.example
 *   bob@acme.example,/etc/mailark/bob.pw    # bob logs in as himself
 *
 * One parser for every front end (`mailark backup --users-file`, `mailark export --users-file`, the
 * agent's `usersFile`), so the format cannot drift. A relative password file is relative to the users
 * file, so the pair can move together. Parsing only: reading the password files is the caller's (each
 * front end reports a missing one in its own words: a flag or a config field).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { errorText, MailarkError } from '../errors.js';

export interface UsersFileEntry {
  user: string;
  /** Absolute path of the user's own password file, when the line names one. */
  passwordFile?: string;
}

/** Parses a users file's text; `file` names it in errors and anchors relative password files. */
export function parseUsersFile(text: string, file: string): UsersFileEntry[] {
  const out: UsersFileEntry[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const [user = '', passwordFile, ...rest] = line.split(',').map((s) => s.trim());
    if (user === '' || rest.length > 0 || passwordFile === '') {
      throw new MailarkError('CONFIG', `${file} line ${i + 1}: expected "user[,password-file]"`, {
        hint: 'one mailbox per line, e.g. alice@example.com or alice@example.com,/etc/mailark/alice.pw',
      });
    }
    out.push(
      passwordFile === undefined ? { user } : { user, passwordFile: resolve(dirname(file), passwordFile) },
    );
  }
  if (out.length === 0) {
    throw new MailarkError('CONFIG', `the users file ${file} lists no mailbox`, {
      hint: 'one mailbox per line: user[,password-file]',
    });
  }
  return out;
}

/** Reads and parses a users file; `hint` says where its path came from (a flag, a config field). */
export async function readUsersFile(file: string, hint: string): Promise<UsersFileEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new MailarkError('CONFIG', `cannot read the users file ${file}: ${errorText(err)}`, {
      cause: err,
      hint,
    });
  }
  return parseUsersFile(text, file);
}
