/**
 * The IMAP options every command that talks to a mail server shares (backup, restore, export from
 * a live server): one declaration, one parser, so they mean the same everywhere.
 *
 *   --imap URL                imap://host[:port] or imaps://host[:port] (MAILARK_IMAP_URL)
 *   --imap-user NAME          admin/master login for whole-tenant access (MAILARK_IMAP_USER)
 *   --imap-password-file F    the admin's password, from a file (MAILARK_IMAP_PASSWORD_FILE);
 *                             or MAILARK_IMAP_PASSWORD; never an argument
 *   --imap-auth FORM          authzid (SASL PLAIN, default with an admin) | master-separator | user
 *   --imap-tls MODE           require | allow | off (STARTTLS policy for imap://)
 *   --imap-insecure           accept certificates that do not verify
 *
 * The password is registered with the context so no error text can ever show it.
 */
import {
  type ImapAuthMode,
  type ImapEndpoint,
  type ImapTlsMode,
  MailarkError,
  parseImapEndpoint,
} from '@mailark/core';
import type { Argv } from 'yargs';
import type { CommandContext } from './context.js';
import { readPassword } from './password.js';

export interface ImapArgs {
  imap?: string | undefined;
  imapUser?: string | undefined;
  imapPasswordFile?: string | undefined;
  imapAuth?: string | undefined;
  imapTls?: string | undefined;
  imapInsecure?: boolean | undefined;
}

export const IMAP_PASSWORD = {
  what: 'IMAP password',
  fileVar: 'MAILARK_IMAP_PASSWORD_FILE',
  valueVar: 'MAILARK_IMAP_PASSWORD',
  fileOption: '--imap-password-file',
} as const;

/** Declares the IMAP options on a command's builder. */
export function withImapOptions<T>(y: Argv<T>) {
  return y
    .option('imap', { type: 'string', describe: 'IMAP server: imap://host[:port] or imaps://host[:port]' })
    .option('imap-user', { type: 'string', describe: 'admin/master login for whole-tenant access' })
    .option('imap-password-file', {
      type: 'string',
      describe: 'file holding the IMAP password (env MAILARK_IMAP_PASSWORD_FILE; or MAILARK_IMAP_PASSWORD)',
    })
    .option('imap-auth', {
      type: 'string',
      choices: ['authzid', 'master-separator', 'user'],
      describe: 'login form: SASL PLAIN authzid (default with --imap-user), Dovecot user*admin, or own login',
    })
    .option('imap-tls', {
      type: 'string',
      choices: ['require', 'allow', 'off'],
      describe: 'STARTTLS policy for imap:// (default require; allow on localhost)',
    })
    .option('imap-insecure', { type: 'boolean', describe: 'accept IMAP certificates that do not verify' });
}

/** The endpoint from the options, then the environment; reads the password. USAGE when no server. */
export async function imapEndpointFrom(args: ImapArgs, ctx: CommandContext): Promise<ImapEndpoint> {
  const env = ctx.env;
  const url = nonEmpty(args.imap) ?? nonEmpty(env.MAILARK_IMAP_URL);
  if (url === undefined) {
    throw new MailarkError('USAGE', 'no IMAP server given', {
      hint: 'pass --imap imap://mail.example.com (or imaps://...) or set MAILARK_IMAP_URL',
    });
  }
  const password = await readPassword({ ...IMAP_PASSWORD, file: args.imapPasswordFile }, env);
  ctx.registerSecret(password);
  const adminUser = nonEmpty(args.imapUser) ?? nonEmpty(env.MAILARK_IMAP_USER);
  return parseImapEndpoint(url, {
    password,
    ...(adminUser === undefined ? {} : { adminUser }),
    ...(args.imapAuth === undefined ? {} : { auth: args.imapAuth as ImapAuthMode }),
    ...(args.imapTls === undefined ? {} : { tls: args.imapTls as ImapTlsMode }),
    ...(args.imapInsecure === undefined ? {} : { insecure: args.imapInsecure }),
  });
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
