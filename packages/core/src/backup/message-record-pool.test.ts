/**
 * The two ways a message is stored give the same blobs: cut, hashed and given ids on a seal pool
 * worker (Repository.cutMessage), or all on the caller's thread (a saver without cutMessage, as on
 * one core). Same ids in the same order, same SHA-256, and the bytes read back exact.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir } from '../mail/fixture-messages.js';
import type { BlobId } from '../mail/snapshot.js';
import { sealPoolSize } from '../repo/seal-pool.js';
import { newTestRepository } from '../repo/test-repository.js';
import type { ChunkerParams } from './chunker.js';
import { type BlobSaver, MAX_HEADER_BYTES, type MessageRecord, storeMessage } from './message-record.js';

const FIXTURES = fixturesDir();
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function* pieces(msg: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let o = 0; o < msg.length; o += size) yield msg.subarray(o, o + size);
}

/** The repository's saveBlob only: storeMessage then cuts and hashes on the caller's thread. */
const inline = (repo: BlobSaver): BlobSaver => ({ saveBlob: (type, plain) => repo.saveBlob(type, plain) });

async function readBack(repo: { loadBlob(id: BlobId): Promise<Uint8Array> }, rec: MessageRecord) {
  return Buffer.concat(await Promise.all(rec.content.map((id) => repo.loadBlob(id))));
}

describe('storeMessage on a seal pool worker', () => {
  it('cuts the 75 fixtures into the blobs the caller thread cuts, whole and in pieces', async () => {
    const { repo } = await newTestRepository();
    const chunker: ChunkerParams = repo.config.chunker;
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.eml'));
    expect(files.length).toBe(75);
    const msgs = files.map((f) => readFileSync(join(FIXTURES, f)));
    // All at once, as a fetch batch is: many streams share the workers' jobs.
    const remote = await Promise.all(msgs.map((m) => storeMessage(repo, chunker, m)));
    expect(sealPoolSize()).toBe(availableParallelism() > 1 ? Math.min(2, availableParallelism() - 1) : 0);
    if (sealPoolSize() > 0) expect(repo.cutMessage(chunker)).toBeDefined();
    for (const [i, msg] of msgs.entries()) {
      const r = remote[i] as MessageRecord;
      const here = await storeMessage(inline(repo), chunker, msg);
      expect(r.content).toEqual(here.content);
      expect(r.sha256).toBe(sha(msg));
      expect(here.sha256).toBe(sha(msg));
      expect(r.size).toBe(msg.length);
      expect(sha(await readBack(repo, r))).toBe(sha(msg));
      // Streamed in odd pieces (a chunk or the header block spans pieces): the same blobs.
      const streamed = await storeMessage(repo, chunker, pieces(msg, 777));
      expect(streamed.content).toEqual(r.content);
      expect(streamed.addedBlobs).toBe(0);
    }
  });

  it('streams a large message and a headerless one in pieces to the caller thread blobs', async () => {
    const { repo } = await newTestRepository();
    const chunker = repo.config.chunker;
    const body = randomBytes(3 * 1024 * 1024 + 12_345).toString('base64');
    const large = Buffer.from(`Subject: large\r\nX-Pad: ${'p'.repeat(5000)}\r\n\r\n${body}`);
    const headerless = randomBytes(MAX_HEADER_BYTES + 300_000).map((b) => (b === 0x0a ? 0x20 : b));
    for (const msg of [large, headerless]) {
      const here = await storeMessage(inline(repo), chunker, msg);
      for (const size of [1024 * 1024, 65_537]) {
        const r = await storeMessage(repo, chunker, pieces(msg, size));
        expect(r.content).toEqual(here.content);
        expect(r.sha256).toBe(sha(msg));
        expect(r.size).toBe(msg.length);
      }
      expect(sha(await readBack(repo, here))).toBe(sha(msg));
    }
  });

  it('stores 40 copies arriving at once as one set of blobs, each sealed once', async () => {
    const { repo } = await newTestRepository();
    const chunker = repo.config.chunker;
    const attachment = randomBytes(200_000).toString('base64');
    const copies = Array.from({ length: 40 }, (_, i) =>
      Buffer.from(`Delivered-To: user${i}@example.com\r\nSubject: report\r\n\r\n${attachment}\r\n`),
    );
    const recs = await Promise.all(copies.map((c) => storeMessage(repo, chunker, c)));
    const bodyBlobs = new Set(recs.flatMap((r) => r.content.slice(1)));
    // The body's blobs are added by exactly one of the copies; every copy adds its own header.
    const added = recs.reduce((n, r) => n + r.addedBlobs, 0);
    expect(added).toBe(40 + bodyBlobs.size);
    for (const [i, r] of recs.entries()) expect(sha(await readBack(repo, r))).toBe(sha(copies[i] as Buffer));
  });
});
