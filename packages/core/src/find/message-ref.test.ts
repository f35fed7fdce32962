import { describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { formatMessageRef, isMessageRefLike, type MessageRef, parseMessageRef } from './message-ref.js';

const SNAP = '3fa2b1c9d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f';

function usage(text: string): MailarkError {
  try {
    parseMessageRef(text);
  } catch (err) {
    expect(err).toBeInstanceOf(MailarkError);
    expect((err as MailarkError).code).toBe('USAGE');
    expect((err as MailarkError).hint).toContain('<snapshot>/<user>/<folder>/<uidvalidity>/<uid>');
    return err as MailarkError;
  }
  throw new Error(`expected ${text} to be rejected`);
}

describe('message references', () => {
  it('formats the documented example', () => {
    const ref: MessageRef = {
      snapshot: SNAP,
      user: 'alice@example.com',
      folder: 'Clients/Été',
      uidValidity: '1700000000',
      uid: 42,
    };
    expect(formatMessageRef(ref)).toBe('3fa2b1c9/alice@example.com/Clients%2F%C3%89t%C3%A9/1700000000/42');
  });

  it('round-trips folder names with any characters', () => {
    const folders = [
      'INBOX',
      'Clients/Été',
      'a b/c%d',
      '100% "sûr" & <ok>',
      '日本語/メール',
      'emoji 📧/🗂',
      '../../etc',
      'tab\there',
      'x/y/z.w',
      '%2F',
      '\u0000nul',
    ];
    for (const folder of folders) {
      const ref = {
        snapshot: SNAP.slice(0, 8),
        user: 'user+tag@example.com',
        folder,
        uidValidity: '4294967295',
        uid: 1,
      };
      const text = formatMessageRef(ref);
      expect(text).toMatch(/^[\x21-\x7e]+$/); // one shell word of printable ASCII
      expect(text.split('/')).toHaveLength(5);
      expect(isMessageRefLike(text)).toBe(true);
      expect(parseMessageRef(text)).toEqual(ref);
    }
  });

  it('reads longer snapshot prefixes and canonicalises numbers', () => {
    expect(parseMessageRef(`${SNAP}/u/INBOX/0007/010`)).toEqual({
      snapshot: SNAP,
      user: 'u',
      folder: 'INBOX',
      uidValidity: '7',
      uid: 10,
    });
    expect(parseMessageRef(' 3fa2b1c9/u/INBOX/1/1\n').snapshot).toBe('3fa2b1c9');
  });

  it('rejects malformed references with the reason', () => {
    expect(usage('3fa2b1c9/u/INBOX/1').message).toContain('4 parts');
    expect(usage('3fa2b1c9/u/Clients/Été/1/1').message).toContain('6 parts');
    expect(usage('3fa2b1/u/INBOX/1/1').message).toContain('snapshot');
    expect(usage('3FA2B1C9/u/INBOX/1/1').message).toContain('snapshot');
    expect(usage('3fa2b1c9//INBOX/1/1').message).toContain('user is empty');
    expect(usage('3fa2b1c9/u/Été/1/1').message).toContain('percent-encoded');
    expect(usage('3fa2b1c9/u/a b/1/1').message).toContain('percent-encoded');
    expect(usage('3fa2b1c9/u/%C3/1/1').message).toContain('not valid');
    expect(usage('3fa2b1c9/u/%zz/1/1').message).toContain('percent-encoded');
    expect(usage('3fa2b1c9/u/INBOX/x/1').message).toContain('uidvalidity');
    expect(usage('3fa2b1c9/u/INBOX/1/0').message).toContain('uid');
    expect(usage('3fa2b1c9/u/INBOX/1/4294967296').message).toContain('uid');
    expect(usage('').message).toContain('1 parts');
    expect(isMessageRefLike('alice@example.com')).toBe(false);
  });
});
