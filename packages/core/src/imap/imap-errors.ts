/**
 * imapflow's loose errors (string codes, flags such as authenticationFailed, NO/BAD texts, Node socket
 * and TLS codes) turned into MailarkErrors with a code and a hint, at the one place they arise.
 *
 *   IMAP_AUTH          login refused (AUTHENTICATIONFAILED / AUTHORIZATIONFAILED, RFC 5530)
 *   IMAP_USER_MISMATCH the session is not the requested user (raised by the session, not here)
 *   IMAP_CONNECT       unreachable, timed out, connection lost, TLS failed
 *   IMAP_PROTOCOL      NO/BAD/BYE answers and anything unexpected
 *
 * `details.transient` marks what a retry may cure (lost connection, BYE, throttling, RFC 5530
 * [UNAVAILABLE]/[INUSE]); authentication errors are never transient: retrying them only locks accounts.
 */
import { MailarkError } from '../errors.js';

/** The fields of an imapflow error this module reads (all optional: imapflow attaches them loosely). */
interface LooseImapError {
  message?: string;
  code?: string;
  authenticationFailed?: boolean;
  tlsFailed?: boolean;
  responseStatus?: string;
  responseText?: string;
  serverResponseCode?: string;
  response?: unknown;
  reason?: string;
  mailboxMissing?: boolean;
}

export interface ImapErrorContext {
  /** "imap://host:port", never with credentials. */
  url: string;
  user?: string;
  /** What was being done: 'login', 'SELECT INBOX', 'APPEND Sent' ... */
  action?: string;
  /** For auth errors: the admin login used, to name it in the hint. */
  adminUser?: string;
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'ETIMEOUT',
  'CONNECT_TIMEOUT',
  'GREETING_TIMEOUT',
  'UPGRADE_TIMEOUT',
  'NoConnection',
  'EConnectionClosed',
  'ClosedAfterConnectText',
  'ClosedAfterConnectTLS',
]);
/** Codes a retry may cure: the network, not the configuration. */
const TRANSIENT_CONNECT = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'ETIMEOUT',
  'CONNECT_TIMEOUT',
  'GREETING_TIMEOUT',
  'NoConnection',
  'EConnectionClosed',
]);
const TRANSIENT_RESPONSE_CODES = new Set(['UNAVAILABLE', 'INUSE', 'LIMIT', 'SERVERBUG']);

/** Maps any error thrown by imapflow (or the socket under it) to a MailarkError. */
export function imapError(err: unknown, ctx: ImapErrorContext): MailarkError {
  if (err instanceof MailarkError) return err;
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as LooseImapError;
  const code = e.code ?? '';
  const responseCode = responseCodeOf(e);
  const serverText = e.responseText ?? e.reason ?? '';
  const who = ctx.user === undefined ? '' : ` as ${ctx.user}`;
  const action = ctx.action ?? 'IMAP command';
  const details: Record<string, unknown> = { url: ctx.url };
  if (ctx.user !== undefined) details.user = ctx.user;
  if (code !== '') details.imapCode = code;
  if (responseCode !== undefined) details.responseCode = responseCode;
  if (serverText !== '') details.serverText = serverText;

  if (
    e.authenticationFailed ||
    responseCode === 'AUTHENTICATIONFAILED' ||
    responseCode === 'AUTHORIZATIONFAILED'
  ) {
    const authz = responseCode === 'AUTHORIZATIONFAILED';
    const hint = authz
      ? `check the user name; and that ${ctx.adminUser ?? 'the admin login'} is a master/admin user allowed to log in as others`
      : ctx.adminUser === undefined
        ? "check the user's password"
        : `check the password of ${ctx.adminUser} and that it is a master/admin user`;
    return new MailarkError(
      'IMAP_AUTH',
      `${ctx.url} refused the login${who}${authz ? ' (no such user, or the admin may not act as them)' : ''}` +
        (serverText === '' ? '' : `: ${serverText}`),
      { cause: err, hint, details },
    );
  }
  if (e.tlsFailed || isTlsCode(code) || /STARTTLS/i.test(e.message ?? '')) {
    const cert = isCertCode(code);
    return new MailarkError('IMAP_CONNECT', `TLS with ${ctx.url} failed: ${e.message ?? code}`, {
      cause: err,
      hint: cert
        ? 'the server certificate does not verify: fix it, or accept it knowingly with the insecure TLS option'
        : 'check that the server offers TLS on this port (imaps:// for 993, STARTTLS on 143) or set the TLS mode',
      details,
    });
  }
  if (CONNECT_CODES.has(code)) {
    const lost =
      code === 'NoConnection' || code === 'EConnectionClosed' || code === 'ECONNRESET' || code === 'EPIPE';
    details.transient = TRANSIENT_CONNECT.has(code);
    return new MailarkError(
      'IMAP_CONNECT',
      lost
        ? `connection to ${ctx.url} lost during ${action}${serverText === '' ? '' : `: ${serverText}`}`
        : `cannot connect to ${ctx.url}: ${e.message ?? code}`,
      {
        cause: err,
        hint: lost
          ? 'the server closed the connection; it is retried automatically, check the server logs if it persists'
          : 'check the host name and port, and that the IMAP server is running and reachable from here',
        details,
      },
    );
  }
  if (e.responseStatus === 'NO' || e.responseStatus === 'BAD' || e.responseStatus === 'BYE') {
    details.transient =
      e.responseStatus === 'BYE' ||
      (responseCode !== undefined && TRANSIENT_RESPONSE_CODES.has(responseCode));
    return new MailarkError(
      'IMAP_PROTOCOL',
      `${ctx.url} answered ${e.responseStatus} to ${action}${who}${serverText === '' ? '' : `: ${serverText}`}`,
      { cause: err, hint: protocolHint(responseCode, e), details },
    );
  }
  if (code === 'ETHROTTLE') {
    details.transient = true;
    return new MailarkError('IMAP_PROTOCOL', `${ctx.url} throttled ${action}${who}`, {
      cause: err,
      hint: 'the server rate-limits this account: it is retried with back-off; lower parallelism if it persists',
      details,
    });
  }
  return new MailarkError(
    'IMAP_PROTOCOL',
    `${action} on ${ctx.url}${who} failed: ${e.message ?? String(err)}`,
    {
      cause: err,
      hint: 'unexpected IMAP failure: run again with debug logging and report the server software if it persists',
      details,
    },
  );
}

/** True when a retry may cure the failure (never for authentication or configuration errors). */
export function isTransientImapError(err: unknown): boolean {
  return err instanceof MailarkError && err.details?.transient === true;
}

/** The RFC 5530 response code of a NO/BAD ("[AUTHENTICATIONFAILED]"), upper case, if any. */
export function responseCodeOf(e: LooseImapError): string | undefined {
  if (e.serverResponseCode) return e.serverResponseCode.toUpperCase();
  // imapflow's parsed response: attributes[0].section[0].value holds the code.
  const attrs = (e.response as { attributes?: Array<{ section?: Array<{ value?: unknown }> }> } | undefined)
    ?.attributes;
  const v = attrs?.[0]?.section?.[0]?.value;
  if (typeof v === 'string') return v.toUpperCase();
  const m = /^\[([A-Z-]+)/i.exec(e.responseText ?? '');
  return m?.[1]?.toUpperCase();
}

function protocolHint(responseCode: string | undefined, e: LooseImapError): string {
  if (e.mailboxMissing || responseCode === 'NONEXISTENT')
    return 'the folder does not exist (any more) on the server';
  if (responseCode === 'OVERQUOTA') return "the mailbox is over quota: free space or raise the user's quota";
  if (responseCode === 'TOOBIG') return 'the server refuses messages this large (APPENDLIMIT)';
  if (responseCode === 'NOPERM') return 'the login has no permission for this folder (ACL)';
  if (responseCode === 'ALREADYEXISTS') return 'the folder already exists';
  if (responseCode !== undefined && TRANSIENT_RESPONSE_CODES.has(responseCode)) {
    return 'the server is temporarily unavailable: it is retried automatically';
  }
  return 'the server refused the command: the server text above says why';
}

function isTlsCode(code: string): boolean {
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || isCertCode(code);
}

function isCertCode(code: string): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS_CERT_ALTNAME/.test(code);
}
