/**
 * Where passwords come from: a file (--password-file or MAILARK_PASSWORD_FILE) or the environment
 * (MAILARK_PASSWORD), never a command-line argument (argv is visible to every user in `ps`).
 * Messages name the source, never the secret. One trailing newline of a file is stripped, since
 * `echo secret > file` adds one; everything else in the file is the password.
 */
import { readFile } from 'node:fs/promises';
import { errorText, MailarkError } from '@mailark/core';

export type Env = Readonly<Record<string, string | undefined>>;

export interface PasswordSources {
  /** Which password this is, for messages: 'repository password', 'new password'. */
  what: string;
  /** A file named on the command line (wins over the environment). */
  file?: string | undefined;
  /** The environment variable naming a file, and the one holding the password itself. */
  fileVar: string;
  valueVar: string;
  /** The command-line option that names a file, for hints. */
  fileOption: string;
}

export const REPOSITORY_PASSWORD = {
  what: 'repository password',
  fileVar: 'MAILARK_PASSWORD_FILE',
  valueVar: 'MAILARK_PASSWORD',
  fileOption: '--password-file',
} as const;

export const NEW_PASSWORD = {
  what: 'new password',
  fileVar: 'MAILARK_NEW_PASSWORD_FILE',
  valueVar: 'MAILARK_NEW_PASSWORD',
  fileOption: '--new-password-file',
} as const;

/** Reads a password: command-line file, then the *_FILE variable, then the value variable. */
export async function readPassword(sources: PasswordSources, env: Env): Promise<string> {
  const file = nonEmpty(sources.file) ?? nonEmpty(env[sources.fileVar]);
  if (file !== undefined) return readPasswordFile(file, sources);
  const value = env[sources.valueVar];
  if (value !== undefined && value !== '') return value;
  throw new MailarkError('USAGE', `no ${sources.what} given`, {
    hint:
      `put it in a file readable only by you and pass ${sources.fileOption} FILE or set ${sources.fileVar}` +
      ` (or set ${sources.valueVar}); mailark never takes a password as an argument`,
  });
}

async function readPasswordFile(file: string, sources: PasswordSources): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new MailarkError('CONFIG', `cannot read the ${sources.what} file ${file}: ${errorText(err)}`, {
      cause: err,
      hint: `check the path given by ${sources.fileOption} or ${sources.fileVar} and its permissions`,
    });
  }
  const password = stripTrailingNewline(text);
  if (password === '') {
    throw new MailarkError('CONFIG', `the ${sources.what} file ${file} is empty`, {
      hint: 'write the password into the file (one line)',
    });
  }
  return password;
}

/** Removes one trailing "\n" or "\r\n", nothing else: spaces may be part of a password. */
export function stripTrailingNewline(text: string): string {
  if (text.endsWith('\r\n')) return text.slice(0, -2);
  if (text.endsWith('\n')) return text.slice(0, -1);
  return text;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
