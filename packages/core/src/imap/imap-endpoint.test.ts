import { describe, expect, it } from 'vitest';
import { isMailarkError } from '../errors.js';
import { isLoopback, parseImapEndpoint } from './imap-endpoint.js';

describe('parseImapEndpoint', () => {
  it('defaults ports per scheme and requires STARTTLS for a remote imap:// host', () => {
    const plain = parseImapEndpoint('imap://mail.example.com', { adminUser: 'admin', password: 'p' });
    expect(plain).toMatchObject({ host: 'mail.example.com', port: 143, implicitTls: false, tls: 'require' });
    expect(plain.url).toBe('imap://mail.example.com:143');
    expect(plain.auth).toBe('authzid');
    const tls = parseImapEndpoint('imaps://mail.example.com');
    expect(tls).toMatchObject({ port: 993, implicitTls: true, tls: 'require', auth: 'user' });
  });

  it('allows clear text by default only on loopback, and honours an explicit mode', () => {
    expect(parseImapEndpoint('imap://127.0.0.1:1143').tls).toBe('allow');
    expect(parseImapEndpoint('imap://[::1]:1143')).toMatchObject({
      host: '::1',
      tls: 'allow',
      url: 'imap://[::1]:1143',
    });
    expect(parseImapEndpoint('imap://localhost').tls).toBe('allow');
    expect(parseImapEndpoint('imap://10.0.0.1', { tls: 'off' }).tls).toBe('off');
  });

  it('takes the admin from the URL user part and never accepts a password there', () => {
    const ep = parseImapEndpoint('imap://admin@mail.example.com', { password: 'secret' });
    expect(ep).toMatchObject({ adminUser: 'admin', auth: 'authzid', separator: '*' });
    expect(ep.url).not.toContain('admin');
    let err: unknown;
    try {
      parseImapEndpoint('imap://admin:hunter2@mail.example.com');
    } catch (e) {
      err = e;
    }
    expect(isMailarkError(err, 'USAGE')).toBe(true);
    expect(String((err as Error).message)).not.toContain('hunter2');
  });

  it('rejects other schemes, paths, and admin forms without an admin', () => {
    for (const bad of ['http://x', 'imap://x/INBOX', 'not a url', 'imap://x?y=1']) {
      expect(() => parseImapEndpoint(bad), bad).toThrow(/IMAP URL/);
    }
    expect(() => parseImapEndpoint('imap://x', { auth: 'master-separator' })).toThrow(/admin user/);
  });
});

describe('isLoopback', () => {
  it('knows loopback names and addresses', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'a.localhost'].every(isLoopback)).toBe(true);
    expect(['10.0.0.1', 'mail.example.com', '128.0.0.1', '::2'].some(isLoopback)).toBe(false);
  });
});
