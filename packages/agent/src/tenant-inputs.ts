/**
 * What a tenant's job reads from disk when it starts: the repository password, the IMAP admin
 * password, and the users (inline or a users file of `user[,password-file]` lines, `#` comments, the
 * format `mailark backup --users-file` reads). Read per job, so rotating a password file or adding a
 * mailbox needs no restart. Secrets never reach a log line or an error message: errors name the file.
 */
import { readFile } from 'node:fs/promises';
import { type BackupUser, MailarkError, readUsersFile } from '@mailark/core';
import type { TenantConfig } from './agent-config.js';

/** The file's content without its trailing newline (as `echo secret > file` writes it). */
export async function readSecretFile(file: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new MailarkError(
      'CONFIG',
      `cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      {
        hint: 'check the path in the agent config and that the agent user may read it',
      },
    );
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') {
    throw new MailarkError('CONFIG', `the ${what} file ${file} is empty`, {
      hint: 'write the password into it',
    });
  }
  return secret;
}

/** The tenant's mailboxes, with their own passwords when the login form is 'user'. */
export async function readTenantUsers(t: TenantConfig): Promise<BackupUser[]> {
  let entries: Array<{ user: string; passwordFile?: string }>;
  if (t.users !== undefined) {
    entries = t.users;
  } else {
    entries = await readUsersFile(t.usersFile as string, 'check tenants[].usersFile in the agent config');
  }
  const users: BackupUser[] = [];
  for (const e of entries) {
    if (t.imap.auth === 'user' && e.passwordFile === undefined) {
      throw new MailarkError(
        'CONFIG',
        `tenant ${t.name}: user ${e.user} has no password file (imap.auth is "user")`,
        {
          hint: 'give every user a password file, or use an admin login (auth authzid or master-separator)',
        },
      );
    }
    users.push(
      e.passwordFile === undefined
        ? { user: e.user }
        : { user: e.user, password: await readSecretFile(e.passwordFile, `password of ${e.user}`) },
    );
  }
  return users;
}
