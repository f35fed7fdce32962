import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir } from '../mail/fixture-messages.js';
import { decodeHeaderText, HeaderScanner, parseMailDate, summarizeMessage } from './header-summary.js';

const FIXTURES = fixturesDir();
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));

describe('summarizeMessage on the 75 real-world fixtures', () => {
  const names = readdirSync(FIXTURES).filter((n) => n.endsWith('.eml'));

  it('parses every fixture without throwing, and finds a Message-ID and a Date in each', () => {
    expect(names).toHaveLength(75);
    for (const n of names) {
      const s = summarizeMessage(fixture(n));
      expect(s.messageId, n).toBeTruthy();
      expect(s.date, n).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    }
  });

  it('streams to the same result however the bytes are split', () => {
    for (const n of names) {
      const bytes = fixture(n);
      const whole = summarizeMessage(bytes);
      // Odd sizes put piece ends between CR, LF and a delimiter's first "-".
      for (const size of [1, 2, 3, 37, 1000]) {
        const s = new HeaderScanner();
        for (let o = 0; o < bytes.length; o += size) s.push(bytes.subarray(o, o + size));
        expect(s.summary(), `${n} in pieces of ${size}`).toEqual(whole);
      }
    }
  });

  it('decodes RFC 2047 subjects in ISO-8859-1, UTF-8, Windows-1252 and UTF-7, and raw 8-bit headers', () => {
    const subject = 'Die Hasen und die Frösche (Microsoft Outlook 00)';
    for (const n of ['m0002.eml', 'm0004.eml', 'm0006.eml', 'm0008.eml', 'm0010.eml']) {
      expect(summarizeMessage(fixture(n)).subject, n).toBe(subject);
    }
    // m0002: unencoded ISO-8859-1 bytes in To; m2004: 8-bit bytes inside an encoded word.
    expect(summarizeMessage(fixture('m0002.eml')).to).toBe('"Jürgen Schmürgen" <schmuergen@example.com>');
    expect(summarizeMessage(fixture('m2004.eml')).to).toBe('Heinz Müller <mueller@example.com>');
    // m1001: an encoded word in the middle of plain text keeps the spaces around it.
    expect(summarizeMessage(fixture('m1001.eml')).subject).toBe(
      'Die Hasen und die Frösche (Netscape Communicator 4.7)',
    );
  });

  it('reads From, Message-ID and Date exactly', () => {
    const s = summarizeMessage(fixture('m0002.eml'));
    expect(s.from).toBe('"Doug Sauder" <doug@example.com>');
    expect(s.messageId).toBe('NDBBIAKOPKHFGPLCODIGMEKBCHAA.doug@example.com');
    expect(s.date).toBe('2000-05-17T23:10:31.000Z');
    expect(s.attachments).toBeUndefined();
  });

  it('lists attachment names from nested multiparts, RFC 2231 and RFC 2047 parameters', () => {
    expect(summarizeMessage(fixture('m0011.eml')).attachments).toEqual([
      'blueball.png',
      'greenball.png',
      'redball.png',
    ]);
    // RFC 2231: filename*="iso-8859-1''HasenundFr%F6sche.txt"
    expect(summarizeMessage(fixture('m3004.eml')).attachments).toEqual(['HasenundFrösche.txt']);
    // RFC 2047 inside a quoted parameter.
    expect(summarizeMessage(fixture('m0024.eml')).attachments).toEqual([
      'Biodiversite de semaine en semaine.doc',
    ]);
    expect(summarizeMessage(fixture('m4009.eml')).attachments).toEqual(['test10Mb.db']);
  });
});

describe('HeaderScanner on hand-made mail', () => {
  it('finds attachments inside a message/rfc822 part', () => {
    const msg = [
      'Subject: fwd',
      'Content-Type: multipart/mixed; boundary=outer',
      '',
      '--outer',
      'Content-Type: message/rfc822',
      '',
      'Subject: inner',
      'Content-Type: multipart/mixed; boundary="inner"',
      '',
      '--inner',
      'Content-Type: text/plain',
      '',
      'hello',
      '--inner',
      'Content-Type: application/octet-stream',
      'Content-Disposition: attachment;',
      " filename*0*=utf-8''%E9t%C3%A9;",
      ' filename*1=".txt"',
      '',
      'AAAA',
      '--inner--',
      '--outer--',
      '',
    ].join('\n');
    const s = summarizeMessage(Buffer.from(msg));
    expect(s.subject).toBe('fwd');
    expect(s.attachments).toHaveLength(1);
  });

  it('decodes an RFC 2231 continuation and an RFC 2047 name, and ignores boundary look-alikes', () => {
    const msg = [
      'Subject: =?utf-8?B?w4l0w6kgMjAyNA==?=',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--bogus',
      'Content-Disposition: attachment; filename=nope.txt',
      '',
      '--b',
      'Content-Disposition: attachment;',
      " filename*0*=utf-8''%C3%A9t%C3%A9;",
      ' filename*1=".txt"',
      '',
      'x',
      '--b  ',
      'Content-Type: application/pdf; name="=?iso-8859-1?Q?r=E9sum=E9.pdf?="',
      '',
      'y',
      '--b--',
    ].join('\r\n');
    const s = summarizeMessage(Buffer.from(msg));
    expect(s.subject).toBe('Été 2024');
    expect(s.attachments).toEqual(['été.txt', 'résumé.pdf']);
  });

  it('does not take the rest of a split body line for a delimiter', () => {
    const msg = Buffer.from(
      [
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain',
        '',
        'a--b',
        'Content-Disposition: attachment; filename=fake.txt',
        '',
        '--b',
        'Content-Disposition: attachment; filename=real.txt',
        '',
        'x',
        '--b--',
      ].join('\r\n'),
    );
    expect(summarizeMessage(msg).attachments).toEqual(['real.txt']);
    const at = msg.indexOf('a--b') + 1;
    for (const cuts of [[at], [at - 1, at], [at, at + 1, at + 2]]) {
      const s = new HeaderScanner();
      let o = 0;
      for (const c of [...cuts, msg.length]) {
        s.push(msg.subarray(o, c));
        o = c;
      }
      expect(s.summary().attachments, `cut at ${cuts.join(',')}`).toEqual(['real.txt']);
    }
  });

  it('never throws on garbage, and reads a message that is all header', () => {
    const garbage = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256));
    expect(() => summarizeMessage(garbage)).not.toThrow();
    expect(summarizeMessage(Buffer.from('Subject: only\r\nMessage-ID: <a@b>'))).toEqual({
      subject: 'only',
      messageId: 'a@b',
    });
    expect(summarizeMessage(Buffer.alloc(0))).toEqual({});
    const s = summarizeMessage(Buffer.from('Subject: =?x-unknown?Q?abc?=\r\nDate: not a date\r\n\r\nbody'));
    expect(s.subject).toBe('abc');
    expect(s.date).toBeUndefined();
  });

  it('reads the fields it needs among folded others, as a whole-block parse does', () => {
    const msg = [
      'Received: from a by b;',
      ' Subject: folded into Received, not a subject',
      'X-Long: x',
      '\tTo: also folded',
      'Subject',
      ' : a name folded before its colon',
      'To: first@example.com',
      'Cc: one@example.com,',
      '\ttwo@example.com',
      'to: second@example.com',
      'X-Bare-CR: a\rMessage-ID: <cr@example.com>',
      'Date: Tue, 4 Jun 2024 10:00:00 +0200\r',
      '',
      'Subject: body, not a header',
    ].join('\r\n');
    expect(summarizeMessage(Buffer.from(msg))).toEqual({
      subject: 'a name folded before its colon',
      to: 'first@example.com, second@example.com',
      cc: 'one@example.com, two@example.com',
      // A bare CR splits a line (as libmime reads it): the Message-ID after it is a field of its own.
      messageId: 'cr@example.com',
      date: '2024-06-04T08:00:00.000Z',
    });
    // An empty line made by a bare CR ends the block for libmime: nothing after it is a header.
    expect(summarizeMessage(Buffer.from('From: a@b\r\n\r\r\nSubject: late\r\n\r\nx'))).toEqual({
      from: 'a@b',
    });
  });

  it('caps a huge To header', () => {
    const to = Array.from({ length: 2000 }, (_, i) => `user${i}@example.com`).join(', ');
    const s = summarizeMessage(Buffer.from(`To: ${to}\r\n\r\n`));
    expect((s.to ?? '').length).toBeLessThanOrEqual(2048);
  });
});

describe('decodeHeaderText and parseMailDate', () => {
  it('decodes adjacent encoded words without the space between them', () => {
    expect(decodeHeaderText('=?utf-8?Q?a?= =?utf-8?Q?b?= c')).toBe('ab c');
    expect(decodeHeaderText('=?utf-7?Q?Fr+APY-sche?=')).toBe('Frösche');
    expect(decodeHeaderText(Buffer.from('Grüße', 'utf8').toString('latin1'))).toBe('Grüße');
  });

  it('parses RFC 5322 dates with comments and obsolete forms', () => {
    expect(parseMailDate('Tue, 4 Jun 2024 10:00:00 +0200 (CEST)')).toBe('2024-06-04T08:00:00.000Z');
    expect(parseMailDate('4 Jun 2024 10:00:00 GMT')).toBe('2024-06-04T10:00:00.000Z');
    expect(parseMailDate('garbage')).toBeUndefined();
  });
});
