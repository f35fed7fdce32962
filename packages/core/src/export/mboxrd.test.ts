import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir } from '../mail/fixture-messages.js';
import { type MboxMessage, MboxrdReader } from './mbox-reader.js';
import {
  asctime,
  mboxFromLine,
  mboxrdQuote,
  mboxrdUnquote,
  mboxSender,
  mboxStatusBlock,
  mboxTerminator,
  parseFromLine,
} from './mboxrd.js';

const FIXTURES = fixturesDir();
const fixtures = readdirSync(FIXTURES)
  .filter((n) => n.endsWith('.eml'))
  .sort()
  .map((n) => ({ name: n, raw: readFileSync(join(FIXTURES, n)) }));

const nasty: Array<{ name: string; raw: Buffer }> = [
  { name: 'from at offset 0', raw: Buffer.from('From me\r\nSubject: x\r\n\r\nbody\r\n') },
  { name: 'quoted froms', raw: Buffer.from('S: x\n\nFrom a\n>From b\n>>From c\n>>>>>>From d\nFrom\n') },
  { name: 'no final newline', raw: Buffer.from('Subject: x\r\n\r\nno newline at the end') },
  { name: 'ends with two newlines', raw: Buffer.from('Subject: x\n\nbody\n\n') },
  { name: 'empty', raw: Buffer.alloc(0) },
  { name: 'just a newline', raw: Buffer.from('\n') },
  { name: '">" lines that are not From', raw: Buffer.from('a\n>\n>>\n>Fro\n>From\n>from x\nFromage\n') },
  { name: 'bare CR', raw: Buffer.from('a\rFrom b\r\n\rFrom c') },
  { name: 'ends in ">From "', raw: Buffer.from('x\n>>From ') },
  {
    name: 'NUL and 8-bit',
    raw: Buffer.from([
      0x46, 0x72, 0x6f, 0x6d, 0x20, 0x00, 0xff, 0x0a, 0x3e, 0x46, 0x72, 0x6f, 0x6d, 0x20, 0xe9,
    ]),
  },
  {
    name: 'long > run',
    raw: Buffer.concat([Buffer.from('x\n'), Buffer.alloc(100_000, 0x3e), Buffer.from('From y\n')]),
  },
];
const all = [...fixtures, ...nasty];

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** An mbox of the messages, as mbox-writer.ts writes it (status headers optional). */
function mboxOf(msgs: Buffer[], status = false): Buffer {
  const parts: Buffer[] = [];
  for (const raw of msgs) {
    parts.push(Buffer.from(mboxFromLine(mboxSender(raw), '2024-01-04T09:05:00Z'), 'latin1'));
    if (status) parts.push(Buffer.from(mboxStatusBlock(raw, ['\\Seen', '\\Flagged'], ['$Label1', 'Work'])));
    parts.push(Buffer.from(mboxrdQuote(raw)), Buffer.from(mboxTerminator(raw)));
  }
  return Buffer.concat(parts);
}

function readAll(mbox: Buffer, chunk: number, status = false): { msgs: MboxMessage[]; preamble: number } {
  const msgs: MboxMessage[] = [];
  const reader = new MboxrdReader({ statusHeaders: status, onMessage: (m) => msgs.push(m) });
  for (let i = 0; i < mbox.length; i += chunk) reader.write(mbox.subarray(i, i + chunk));
  reader.end();
  return { msgs, preamble: reader.preamble };
}

describe('mboxrd quoting', () => {
  it('quotes every /^>*From / line and nothing else', () => {
    const q = Buffer.from(
      mboxrdQuote(Buffer.from('From a\nx From b\n>From c\n>>From d\n>x\nFrom\n')),
    ).toString();
    expect(q).toBe('>From a\nx From b\n>>From c\n>>>From d\n>x\nFrom\n');
  });

  it.each(all.map((m) => [m.name, m.raw] as const))('unquote(quote(x)) is x exactly: %s', (_, raw) => {
    const quoted = mboxrdQuote(raw);
    expect(sha(mboxrdUnquote(quoted))).toBe(sha(raw));
    // A quoted message never has a line that a reader would take for a separator.
    expect(/(^|\n)From /.test(Buffer.from(quoted).toString('latin1'))).toBe(false);
  });
});

describe('mbox separator lines', () => {
  it('formats the internal date as asctime in UTC', () => {
    expect(asctime(new Date('2024-01-04T09:05:00Z'))).toBe('Thu Jan  4 09:05:00 2024');
    expect(mboxFromLine('a@b.example', '2023-12-25T23:59:59.000Z')).toBe(
      'From a@b.example Mon Dec 25 23:59:59 2023\n',
    );
    expect(parseFromLine('From a@b.example Mon Dec 25 23:59:59 2023')?.date?.toISOString()).toBe(
      '2023-12-25T23:59:59.000Z',
    );
  });

  it('takes the sender from Return-Path, then From, else MAILER-DAEMON', () => {
    expect(mboxSender(Buffer.from('Return-Path: <bounce@x.example>\r\nFrom: A <a@x.example>\r\n\r\n'))).toBe(
      'bounce@x.example',
    );
    expect(mboxSender(Buffer.from('Return-Path: <>\r\nFrom: a@x.example\r\n\r\n'))).toBe('MAILER-DAEMON');
    expect(mboxSender(Buffer.from('From: "Doe, J" <j.doe@x.example>\n\n'))).toBe('j.doe@x.example');
    expect(mboxSender(Buffer.from('From:\r\n  folded@x.example (J)\r\n\r\n'))).toBe('folded@x.example');
    expect(mboxSender(Buffer.from('Subject: none\r\n\r\nFrom: body@x.example\r\n'))).toBe('MAILER-DAEMON');
    expect(mboxSender(Buffer.from('From: <has space@x>\r\n\r\n'))).not.toMatch(/\s/);
  });
});

describe('MboxrdReader', () => {
  for (const chunk of [1, 7, 4096, 1 << 20]) {
    it(`recovers the exact bytes of all ${all.length} messages (chunks of ${chunk} bytes)`, () => {
      const raws = chunk === 1 ? nasty.map((m) => m.raw) : all.map((m) => m.raw);
      const mbox = mboxOf(raws);
      const { msgs, preamble } = readAll(mbox, chunk);
      expect(preamble).toBe(0);
      expect(msgs).toHaveLength(raws.length);
      for (const [i, raw] of raws.entries()) {
        const m = msgs[i] as MboxMessage;
        expect(m.candidates).toContainEqual({ size: raw.length, sha256: sha(raw) });
        expect(m.date?.toISOString()).toBe('2024-01-04T09:05:00.000Z');
        expect(mbox.subarray(m.offset, m.offset + 5).toString()).toBe('From ');
        // What any mbox reader gets (strip one "\n") is the exact bytes when they end in "\n".
        if (raw.length > 0 && raw[raw.length - 1] === 0x0a)
          expect(m.candidates.at(-1)?.sha256).toBe(sha(raw));
      }
    });
  }

  it('takes the three status lines apart and hashes the rest', () => {
    const raws = fixtures.slice(0, 10).map((m) => m.raw);
    const { msgs } = readAll(mboxOf(raws, true), 333, true);
    expect(msgs).toHaveLength(10);
    for (const [i, raw] of raws.entries()) {
      expect(msgs[i]?.status).toEqual({ seen: true, xstatus: 'F', keywords: ['$Label1', 'Work'] });
      expect(msgs[i]?.candidates).toContainEqual({ size: raw.length, sha256: sha(raw) });
    }
  });

  it('counts bytes before the first separator as a preamble', () => {
    const { msgs, preamble } = readAll(
      Buffer.concat([Buffer.from('junk\n'), mboxOf([Buffer.from('a\n')])]),
      3,
    );
    expect(preamble).toBe(5);
    expect(msgs).toHaveLength(1);
  });
});
