/**
 * Where and how to log in to an IMAP server: `imap://host[:port]` or `imaps://host[:port]` plus the
 * TLS policy and the login form. A pure value: parsing validates it, openMailbox() uses it.
 *
 * TLS (RFC 8314): imaps:// is implicit TLS (port 993). imap:// (port 143) upgrades with STARTTLS
 * (RFC 3501 §6.2.1) according to `tls`:
 *   'require'  STARTTLS must succeed, else IMAP_CONNECT: credentials never cross the wire in clear;
 *   'allow'    STARTTLS when the server offers it, clear text otherwise;
 *   'off'      never STARTTLS.
 * Default: 'require', except for a loopback host (127.0.0.0/8, ::1, localhost), where 'allow' is the
 * default because nothing leaves the machine (local Dovecot, tests). `ca` adds trusted CA certificates
 * (a private CA, or a self-signed server certificate); `insecure` accepts any certificate (openMailbox
 * warns through the Reporter).
 *
 * Login forms for whole-tenant access:
 *   'authzid'           SASL PLAIN (RFC 4616) authzid=<user>, authcid=<adminUser>: Dovecot master users,
 *                       Cyrus/Stalwart admins. Never falls back to LOGIN.
 *   'master-separator'  LOGIN "<user><separator><adminUser>" (Dovecot auth_master_user_separator, '*').
 *   'user'              the user's own password (openMailbox's userPassword, else `password`).
 * The password is a string the caller read from a file or the environment. It is never part of the
 * URL, never logged and never put in an error message.
 */
import { MailarkError } from '../errors.js';

export type ImapTlsMode = 'require' | 'allow' | 'off';
export type ImapAuthMode = 'authzid' | 'master-separator' | 'user';

export interface ImapEndpoint {
  /** The endpoint without credentials, for logs and messages: "imap://mail.example.com:143". */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** imaps://: TLS from the first byte. */
  readonly implicitTls: boolean;
  /** STARTTLS policy for imap:// (ignored for imaps://). */
  readonly tls: ImapTlsMode;
  /** Accept certificates that do not verify (self-signed, wrong name, expired). */
  readonly insecure: boolean;
  /** Extra trusted CA certificate(s), PEM: verify a private CA or a self-signed server properly. */
  readonly ca?: string;
  readonly auth: ImapAuthMode;
  /** The admin/master login for 'authzid' and 'master-separator'. */
  readonly adminUser?: string;
  /** The admin's password ('authzid', 'master-separator') or a default user password ('user'). */
  readonly password?: string;
  /** Master-user separator for 'master-separator' (Dovecot auth_master_user_separator). */
  readonly separator: string;
}

export interface ImapEndpointOptions {
  tls?: ImapTlsMode;
  insecure?: boolean;
  ca?: string;
  auth?: ImapAuthMode;
  adminUser?: string;
  password?: string;
  separator?: string;
}

/**
 * Parses `imap://host[:port]` / `imaps://host[:port]` (a user name in the URL is taken as adminUser;
 * a password in the URL is refused). Defaults: auth 'authzid' when an admin user is given, else 'user'.
 */
export function parseImapEndpoint(url: string, opts: ImapEndpointOptions = {}): ImapEndpoint {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw usage(`invalid IMAP URL ${JSON.stringify(url)}`);
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (scheme !== 'imap' && scheme !== 'imaps') throw usage(`unsupported IMAP URL scheme "${scheme}:"`);
  if (u.password !== '') {
    throw new MailarkError('USAGE', 'the IMAP URL must not contain a password', {
      hint: 'give the password through a file or an environment variable, never in the URL or on the command line',
    });
  }
  if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '') {
    throw usage(`an IMAP URL names only the server: ${JSON.stringify(url)}`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw usage(`the IMAP URL has no host: ${JSON.stringify(url)}`);
  const implicitTls = scheme === 'imaps';
  const port = u.port === '' ? (implicitTls ? 993 : 143) : Number(u.port);
  const urlUser = decodeURIComponent(u.username);
  const adminUser = opts.adminUser ?? (urlUser === '' ? undefined : urlUser);
  const auth = opts.auth ?? (adminUser === undefined ? 'user' : 'authzid');
  if (auth !== 'user' && adminUser === undefined) {
    throw new MailarkError('USAGE', `IMAP login form "${auth}" needs an admin user`, {
      hint: 'name the master/admin login, e.g. imap://admin@mail.example.com or --imap-admin admin',
    });
  }
  const tls = opts.tls ?? (isLoopback(host) ? 'allow' : 'require');
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const endpoint: ImapEndpoint = {
    url: `${scheme}://${hostPart}:${port}`,
    host,
    port,
    implicitTls,
    tls: implicitTls ? 'require' : tls,
    insecure: opts.insecure ?? false,
    auth,
    separator: opts.separator ?? '*',
    ...(opts.ca === undefined ? {} : { ca: opts.ca }),
    ...(adminUser === undefined ? {} : { adminUser }),
    ...(opts.password === undefined ? {} : { password: opts.password }),
  };
  return endpoint;
}

/** 127.0.0.0/8, ::1 and localhost: connections that never leave the machine. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

function usage(message: string): MailarkError {
  return new MailarkError('USAGE', message, { hint: 'use imap://host[:port] or imaps://host[:port]' });
}
