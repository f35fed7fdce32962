import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ChunkerParams } from './chunker.js';
import { type BlobSaver, headerBlockEnd, MessageRecordWriter, storeMessage } from './message-record.js';

const chunker: ChunkerParams = { min: 4096, avg: 16384, max: 65536, seed: 'a1b2c3d4' };
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A content-addressed blob sink that counts what it stores (no compression: bytes are bytes). */
class CountingSink implements BlobSaver {
  readonly blobs = new Map<string, Uint8Array>();
  storedBytes = 0;
  async saveBlob(_type: 'data', plain: Uint8Array) {
    const id = sha(plain);
    if (this.blobs.has(id)) return { id, added: false, storedBytes: 0 };
    this.blobs.set(id, Uint8Array.from(plain));
    this.storedBytes += plain.length;
    return { id, added: true, storedBytes: plain.length };
  }
  reassemble(ids: string[]): Buffer {
    return Buffer.concat(ids.map((id) => this.blobs.get(id) as Uint8Array));
  }
}

/** Deterministic pseudo-random bytes. */
function prng(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; off += 32, i++) {
    createHash('sha256')
      .update(`${seed}:${i}`)
      .digest()
      .copy(out, off, 0, Math.min(32, n - off));
  }
  return out;
}

/** Base64 in 76-column CRLF lines, as MIME writers emit it. */
function base64Lines(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

const attachment = prng(300_000, 'report.pdf');

function delivery(user: string, i: number): Buffer {
  const top = [
    `Return-Path: <bob@example.org>`,
    `Delivered-To: ${user}`,
    `Received: from mx${i}.example.net (mx${i}.example.net [192.0.2.${i}]) by mail.example.com with ESMTPS id ${sha(Buffer.from(user)).slice(0, 16)}; Tue, 4 Jun 2024 10:0${i % 10}:00 +0200`,
  ];
  const common = [
    'From: Bob <bob@example.org>',
    'To: all@example.com',
    'Subject: Quarterly report',
    'Message-ID: <q2@example.org>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Please find the report attached.',
    '--b1',
    'Content-Type: application/pdf; name="report.pdf"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="report.pdf"',
    '',
    base64Lines(attachment),
    '--b1--',
    '',
  ];
  return Buffer.from([...top, ...common].join('\r\n'));
}

describe('headerBlockEnd', () => {
  it('finds the first empty line with CRLF, bare LF, or at the start', () => {
    expect(headerBlockEnd(Buffer.from('A: 1\r\nB: 2\r\n\r\nbody'))).toBe(14);
    expect(headerBlockEnd(Buffer.from('A: 1\nB: 2\n\nbody\n\n'))).toBe(11);
    expect(headerBlockEnd(Buffer.from('\r\nbody'))).toBe(2);
    expect(headerBlockEnd(Buffer.from('A: 1\r\n \r\n'))).toBe(-1);
    expect(headerBlockEnd(Buffer.from('A: 1\r\nB: 2'))).toBe(-1);
  });
});

describe('storeMessage', () => {
  it('reassembles the exact bytes, header block first, however the message is streamed', async () => {
    const msg = delivery('alice@example.com', 1);
    const sink = new CountingSink();
    const whole = await storeMessage(sink, chunker, msg);
    expect(whole.size).toBe(msg.length);
    expect(whole.sha256).toBe(sha(msg));
    expect(sha(sink.reassemble(whole.content))).toBe(sha(msg));
    const header = sink.blobs.get(whole.content[0] as string) as Uint8Array;
    expect(Buffer.from(header).toString('latin1').endsWith('multipart/mixed; boundary="b1"\r\n\r\n')).toBe(
      true,
    );
    expect(whole.content.length).toBeGreaterThan(5);

    async function* pieces(size: number) {
      for (let o = 0; o < msg.length; o += size) yield msg.subarray(o, o + size);
    }
    for (const size of [1, 3, 100, 8192, 65536]) {
      if (size === 1) {
        // Byte-by-byte over the header part only (the whole message byte by byte is slow for no gain).
        const w = new MessageRecordWriter(sink, chunker);
        for (let o = 0; o < 2000; o++) await w.write(msg.subarray(o, o + 1));
        await w.write(msg.subarray(2000));
        expect((await w.finish()).content).toEqual(whole.content);
        continue;
      }
      const streamed = await storeMessage(sink, chunker, pieces(size));
      expect(streamed.content).toEqual(whole.content);
      expect(streamed.sha256).toBe(whole.sha256);
      expect(streamed.addedBlobs).toBe(0);
    }
  });

  it('keeps edge-case messages exact: bare LF, no empty line, empty body, empty message, NUL and 8-bit', async () => {
    const cases = [
      Buffer.from('Subject: bare\n\nline one\nline two\n'),
      Buffer.from('Subject: no body at all\r\nX-A: b\r\n'),
      Buffer.from('Subject: empty body\r\n\r\n'),
      Buffer.alloc(0),
      Buffer.concat([
        Buffer.from('Subject: caf\xe9\r\n\r\n', 'latin1'),
        Buffer.from([0, 0xff, 0x00, 0x0a]),
        prng(70_000, 'x'),
      ]),
    ];
    const sink = new CountingSink();
    for (const msg of cases) {
      const r = await storeMessage(sink, chunker, msg);
      expect(r.size).toBe(msg.length);
      expect(sha(sink.reassemble(r.content))).toBe(sha(msg));
    }
    const noBody = await storeMessage(sink, chunker, cases[1] as Buffer);
    expect(noBody.content).toHaveLength(1);
    expect((await storeMessage(sink, chunker, Buffer.alloc(0))).content).toEqual([]);
  });

  it('stores a small body as one blob after its header blob', async () => {
    const sink = new CountingSink();
    const r = await storeMessage(sink, chunker, Buffer.from(`Subject: hi\r\n\r\n${'x'.repeat(3000)}\r\n`));
    expect(r.content).toHaveLength(2);
  });

  it('stores 40 deliveries of one mail for about one header block each', async () => {
    const sink = new CountingSink();
    const first = await storeMessage(sink, chunker, delivery('user0@example.com', 0));
    const afterFirst = sink.storedBytes;
    let raw = first.size;
    let headerBytes = 0;
    for (let i = 1; i < 40; i++) {
      const r = await storeMessage(sink, chunker, delivery(`user${i}@example.com`, i));
      raw += r.size;
      headerBytes += (sink.blobs.get(r.content[0] as string) as Uint8Array).length;
      expect(r.addedBlobs).toBe(1);
    }
    const extra = sink.storedBytes - afterFirst;
    // Each extra copy costs exactly its own header block (~ 550 bytes), nothing of the 400 KB body.
    expect(extra).toBe(headerBytes);
    expect(extra / 39).toBeLessThan(700);
    expect(sink.storedBytes / raw).toBeLessThan(0.03);
  });

  it('dedups an attachment forwarded inside a different message', async () => {
    const sink = new CountingSink();
    await storeMessage(sink, chunker, delivery('alice@example.com', 1));
    const before = sink.storedBytes;
    const forward = Buffer.from(
      [
        'From: Alice <alice@example.com>',
        'To: carol@example.net',
        'Subject: Fwd: Quarterly report',
        'Content-Type: multipart/mixed; boundary="fwd-7"',
        '',
        '--fwd-7',
        'Content-Type: text/plain',
        '',
        `See below, with my notes: ${prng(2000, 'notes').toString('hex')}`,
        '--fwd-7',
        'Content-Type: application/pdf; name="Q2.pdf"',
        'Content-Disposition: attachment; filename="Q2.pdf"',
        'Content-Transfer-Encoding: base64',
        '',
        base64Lines(attachment),
        '--fwd-7--',
        '',
      ].join('\r\n'),
    );
    const r = await storeMessage(sink, chunker, forward);
    const added = sink.storedBytes - before;
    // The 400 KB of base64 is shared except the chunks at its two edges (at most ~3 x max chunk).
    expect(added).toBeLessThan(r.size * 0.35);
    expect(sha(sink.reassemble(r.content))).toBe(sha(forward));
  });

  it('chunks a headerless message over the cap without one giant blob', async () => {
    const sink = new CountingSink();
    const msg = Buffer.alloc(1024 * 1024 + 200_000, 0x41); // no LF at all
    const r = await storeMessage(sink, chunker, msg);
    expect(r.content.length).toBeGreaterThan(10);
    for (const id of r.content) expect((sink.blobs.get(id) as Uint8Array).length).toBeLessThanOrEqual(65536);
    expect(sha(sink.reassemble(r.content))).toBe(sha(msg));
  });
});
