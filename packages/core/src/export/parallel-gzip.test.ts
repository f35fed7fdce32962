import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { crc32, createGunzip, gunzipSync, gzipSync, inflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { fixturesDir } from '../mail/fixture-messages.js';
import { ParallelGzip, type ParallelGzipOptions } from './parallel-gzip.js';

const FIXTURES = fixturesDir();
const mail = Buffer.concat(
  readdirSync(FIXTURES)
    .filter((n) => n.endsWith('.eml'))
    .sort()
    .map((n) => readFileSync(join(FIXTURES, n))),
);
const BLOCK = 64 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const work = mkdtempSync(join(tmpdir(), 'mailark-pgz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Compresses `input`, written in pieces of `piece` bytes (odd sizes cross block edges). */
async function compress(input: Buffer, opts: ParallelGzipOptions, piece = 7001): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += piece) pieces.push(input.subarray(i, i + piece));
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), new ParallelGzip(opts), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) out.push(c);
  });
  return Buffer.concat(out);
}

/** What every reader of the result must agree on: one member, one deflate stream, exact trailer. */
function expectOneMember(gz: Buffer, input: Buffer): void {
  expect([...gz.subarray(0, 4)]).toEqual([0x1f, 0x8b, 8, 0]);
  // Inflating the body as ONE raw stream gives the whole input: the blocks are a single stream.
  expect(sha(inflateRawSync(gz.subarray(10, gz.length - 8)))).toBe(sha(input));
  expect(gz.readUInt32LE(gz.length - 8)).toBe(crc32(input) >>> 0);
  expect(gz.readUInt32LE(gz.length - 4)).toBe(input.length % 2 ** 32);
  expect(sha(gunzipSync(gz))).toBe(sha(input));
}

describe('ParallelGzip', () => {
  const cases: Array<[string, Buffer]> = [
    ['an empty input', Buffer.alloc(0)],
    ['a tiny input', Buffer.from('Subject: hi\r\n\r\nhello\r\n')],
    ['exactly one block', mail.subarray(0, BLOCK)],
    ['one block and one byte', mail.subarray(0, BLOCK + 1)],
    ['many blocks', Buffer.concat([mail, mail, mail]).subarray(0, 23 * BLOCK + 12_345)],
  ];
  for (const [what, input] of cases) {
    it(`writes one valid gzip member for ${what}`, async () => {
      const gz = await compress(input, { blockSize: BLOCK, concurrency: 3 });
      expectOneMember(gz, input);
      // Node's streaming gunzip, as archive-reader.ts reads a .tar.gz.
      const viaStream = await buffer(Readable.from([gz]).pipe(createGunzip()));
      expect(sha(viaStream)).toBe(sha(input));
    });
  }

  it('writes the same gzip as zlib for an empty input', async () => {
    const gz = await compress(Buffer.alloc(0), {});
    expect(gz.toString('hex')).toBe(gzipSync(Buffer.alloc(0)).toString('hex'));
    expect(gunzipSync(gz).length).toBe(0);
  });

  it('is GNU gzip and Python readable, whatever the concurrency and level', async () => {
    const input = Buffer.concat([mail, mail]).subarray(0, 9 * BLOCK + 777);
    for (const opts of [
      { blockSize: BLOCK, concurrency: 1, level: 6 },
      { blockSize: BLOCK, concurrency: 4, level: 9 },
      { blockSize: BLOCK, concurrency: 2, level: 0 },
    ]) {
      const gz = await compress(input, opts, 65_537);
      expectOneMember(gz, input);
      const file = join(work, `in-${opts.level}-${opts.concurrency}.gz`);
      writeFileSync(file, gz);
      const t = spawnSync('gzip', ['-t', file], { encoding: 'utf8' });
      expect(t.stderr).toBe('');
      expect(t.status).toBe(0);
      const gunzipped = spawnSync('gzip', ['-dc', file]);
      expect(sha(gunzipped.stdout)).toBe(sha(input));
      const py = spawnSync(
        'python3',
        [
          '-c',
          'import gzip,hashlib,sys; print(hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())',
          file,
        ],
        { encoding: 'utf8' },
      );
      expect(py.stderr).toBe('');
      expect(py.stdout.trim()).toBe(sha(input));
    }
  });

  it('keeps at most `concurrency` blocks deflating, even for one large chunk', async () => {
    const input = Buffer.concat([mail, mail, mail, mail]).subarray(0, 20 * BLOCK + 5);
    for (const concurrency of [1, 2, 3]) {
      const gz = new ParallelGzip({ blockSize: BLOCK, concurrency });
      const out: Buffer[] = [];
      await pipeline(Readable.from([input]), gz, async (src: AsyncIterable<Buffer>) => {
        for await (const c of src) out.push(c);
      });
      expectOneMember(Buffer.concat(out), input);
      expect(gz.peakInFlight).toBeGreaterThanOrEqual(1);
      expect(gz.peakInFlight).toBeLessThanOrEqual(concurrency);
    }
  });

  it('costs less than 1% over a single zlib stream at the same level', async () => {
    const input = Buffer.concat([mail, mail, mail, mail]);
    const gz = await compress(input, { blockSize: BLOCK, concurrency: 2 }, 300_000);
    const single = gzipSync(input, { level: 6 });
    expect(gz.length / single.length).toBeLessThan(1.01);
  });

  it('fails the pipeline when the output fails, with blocks still deflating', async () => {
    const input = Buffer.concat([mail, mail, mail, mail]);
    const gz = new ParallelGzip({ blockSize: BLOCK, concurrency: 3 });
    let writes = 0;
    const failing = new Writable({
      write(_chunk, _enc, done) {
        writes++;
        done(writes === 2 ? new Error('disk full') : null);
      },
    });
    await expect(pipeline(Readable.from([input]), gz, failing)).rejects.toThrow('disk full');
    // Blocks that finish after the failure must not throw (an unhandled error fails this run).
    await new Promise((r) => setTimeout(r, 100));
    expect(gz.destroyed).toBe(true);
  });

  it('rejects a level outside 0-9', () => {
    expect(() => new ParallelGzip({ level: 10 })).toThrow(RangeError);
  });
});
