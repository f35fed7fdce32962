import { describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { imapError, isTransientImapError, responseCodeOf } from './imap-errors.js';

const ctx = {
  url: 'imap://mail.example.com:143',
  user: 'alice@example.com',
  action: 'SELECT INBOX',
  adminUser: 'admin',
};

function commandFailed(status: string, text: string, code?: string) {
  return Object.assign(new Error('Command failed'), {
    responseStatus: status,
    responseText: text,
    ...(code === undefined
      ? {}
      : { response: { attributes: [{ section: [{ type: 'ATOM', value: code }] }] } }),
  });
}

describe('imapError', () => {
  it('maps refused logins to IMAP_AUTH, never transient, naming the admin', () => {
    const authn = imapError(
      Object.assign(new Error('Authentication failed'), {
        authenticationFailed: true,
        serverResponseCode: 'AUTHENTICATIONFAILED',
      }),
      ctx,
    );
    expect(authn.code).toBe('IMAP_AUTH');
    expect(authn.hint).toContain('admin');
    expect(isTransientImapError(authn)).toBe(false);
    const authz = imapError(
      Object.assign(new Error('x'), {
        authenticationFailed: true,
        serverResponseCode: 'AUTHORIZATIONFAILED',
      }),
      ctx,
    );
    expect(authz.message).toMatch(/no such user/);
  });

  it('maps network failures to IMAP_CONNECT; lost connections are transient, refused ones retried too', () => {
    const refused = imapError(
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      ctx,
    );
    expect(refused.code).toBe('IMAP_CONNECT');
    expect(refused.hint).toMatch(/reachable/);
    const lost = imapError(
      Object.assign(new Error('Connection not available'), { code: 'NoConnection' }),
      ctx,
    );
    expect(lost.message).toContain('lost during SELECT INBOX');
    expect(isTransientImapError(lost)).toBe(true);
    const dns = imapError(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), ctx);
    expect(isTransientImapError(dns)).toBe(false);
  });

  it('maps certificate and STARTTLS failures to IMAP_CONNECT with a TLS hint', () => {
    const cert = imapError(
      Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
      ctx,
    );
    expect(cert.code).toBe('IMAP_CONNECT');
    expect(cert.hint).toMatch(/insecure/);
    const starttls = imapError(
      Object.assign(new Error('Server does not support STARTTLS'), { tlsFailed: true }),
      ctx,
    );
    expect(starttls.hint).toMatch(/TLS/);
  });

  it('maps NO/BAD/BYE to IMAP_PROTOCOL with the server text; [UNAVAILABLE] and BYE are transient', () => {
    const nonexistent = imapError(commandFailed('NO', 'Mailbox does not exist', 'NONEXISTENT'), ctx);
    expect(nonexistent.code).toBe('IMAP_PROTOCOL');
    expect(nonexistent.message).toContain(
      'answered NO to SELECT INBOX as alice@example.com: Mailbox does not exist',
    );
    expect(nonexistent.hint).toMatch(/does not exist/);
    expect(isTransientImapError(nonexistent)).toBe(false);
    expect(isTransientImapError(imapError(commandFailed('NO', 'try later', 'UNAVAILABLE'), ctx))).toBe(true);
    expect(isTransientImapError(imapError(commandFailed('BYE', 'shutting down'), ctx))).toBe(true);
    expect(imapError(commandFailed('NO', 'quota', 'OVERQUOTA'), ctx).hint).toMatch(/quota/);
  });

  it('keeps MailarkErrors and wraps anything else as IMAP_PROTOCOL', () => {
    const own = new MailarkError('IMAP_USER_MISMATCH', 'x');
    expect(imapError(own, ctx)).toBe(own);
    expect(imapError('weird', ctx).code).toBe('IMAP_PROTOCOL');
  });
});

describe('responseCodeOf', () => {
  it('reads the code from imapflow fields or the text', () => {
    expect(responseCodeOf({ serverResponseCode: 'inuse' })).toBe('INUSE');
    expect(responseCodeOf({ responseText: '[LIMIT] too many' })).toBe('LIMIT');
    expect(responseCodeOf({ responseText: 'plain' })).toBeUndefined();
  });
});
