import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from './crypto.js';
import { decodePackTail, openBlob, type PackEntry, sealBlob } from './pack.js';
import { Packer, type PackSink, type PackSpool } from './packer.js';

const key = randomBytes(32);
const idOf = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A sink that holds each write open for a while and checks, when it completes, that the bytes it was
 *  handed still hash to the pack's id (a packer reusing a buffer too early would change them). */
class SlowSink implements PackSink {
  readonly packs = new Map<string, Buffer>();
  readonly written: string[] = [];
  constructor(private readonly delayMs: number) {}
  async writePack(packId: string, bytes: Uint8Array): Promise<void> {
    await new Promise((r) => setTimeout(r, this.delayMs));
    expect(sha256Hex(bytes)).toBe(packId);
    this.packs.set(packId, Buffer.from(bytes)); // a store copies (ObjectStore: bytes stay the caller's)
  }
  packWritten(packId: string): void {
    this.written.push(packId);
  }
}

/** Incompressible bytes, so pack sizes follow blob sizes. */
function blob(_i: number, size: number): Buffer {
  return randomBytes(size);
}

/** A sink that spools packs (as a local directory store does): bytes kept per spool, as a file would. */
class SpoolSink implements PackSink {
  readonly packs = new Map<string, Buffer>();
  readonly reads: number[] = [];
  open = 0;
  failAppend = false;
  async writePack(): Promise<void> {
    throw new Error('a spooling sink is never handed whole packs');
  }
  packWritten(): void {}
  spoolPack(): PackSpool {
    const parts: Buffer[] = [];
    let size = 0;
    let closed = false;
    this.open++;
    return {
      append: (bytes) => {
        if (this.failAppend) throw new Error('disk full');
        parts.push(Buffer.from(bytes));
        size += bytes.byteLength;
      },
      read: async (offset, length) => {
        if (closed) throw new Error('read after close');
        this.reads.push(length);
        return Buffer.concat(parts).subarray(offset, offset + length);
      },
      commit: async (packId) => {
        await new Promise((r) => setTimeout(r, 2));
        this.packs.set(packId, Buffer.concat(parts, size));
      },
      close: () => {
        closed = true;
        this.open--;
      },
    };
  }
}

describe('Packer', () => {
  it('spools packs when the sink can: named by the SHA-256 of their bytes, pending blobs read back', async () => {
    const sink = new SpoolSink();
    const packer = new Packer(key, 8 * 1024, sink);
    const plains = Array.from({ length: 40 }, (_, i) => blob(i, 500 + ((i * 7919) % 3000)));
    const ids = plains.map(idOf);
    await Promise.all(
      plains.map(async (p, i) => {
        const type = i % 7 === 0 ? 'tree' : 'data';
        const id = ids[i] as string;
        const added = packer.add(type, id, sealBlob(key, type, id, p), p.length);
        const pending = packer.pending(id);
        if (pending === undefined) throw new Error(`blob ${i} is not pending after add`);
        expect(pending.sealed).toBeUndefined(); // not in memory: in the spool
        const sealed = await packer.readPending(pending);
        expect(Buffer.from(openBlob(key, pending.entry, sealed, 'pending')).equals(p)).toBe(true);
        return added;
      }),
    );
    await packer.flush();
    expect(sink.reads.length).toBe(plains.length);
    expect(sink.open).toBe(0); // every spool closed once its pack is written
    expect(sink.packs.size).toBeGreaterThan(4);
    let blobs = 0;
    for (const [packId, pack] of sink.packs) {
      expect(sha256Hex(pack)).toBe(packId);
      for (const e of decodePackTail(key, pack, pack.length, packId)) {
        const i = ids.indexOf(e.id);
        const sealed = pack.subarray(e.offset, e.offset + e.length);
        expect(Buffer.from(openBlob(key, e, sealed, 'blob')).equals(plains[i] as Buffer)).toBe(true);
        expect(packer.pending(e.id)).toBeUndefined();
        blobs++;
      }
    }
    expect(blobs).toBe(plains.length);
  });

  it('makes a failed spool append sticky and drops that pack', async () => {
    const sink = new SpoolSink();
    const packer = new Packer(key, 64 * 1024, sink);
    const p = blob(1, 100);
    await packer.add('data', idOf(p), sealBlob(key, 'data', idOf(p), p), p.length);
    sink.failAppend = true;
    const q = blob(2, 100);
    await expect(packer.add('data', idOf(q), sealBlob(key, 'data', idOf(q), q), q.length)).rejects.toThrow(
      'disk full',
    );
    expect(packer.pending(idOf(p))).toBeUndefined();
    expect(sink.open).toBe(0);
    await expect(packer.flush()).rejects.toThrow('disk full');
  });

  it('writes every blob into a pack that decodes, reusing buffers only once a pack is written', async () => {
    const sink = new SlowSink(5);
    const packer = new Packer(key, 32 * 1024, sink);
    const plains = Array.from({ length: 120 }, (_, i) => blob(i, 1000 + ((i * 7919) % 9000)));
    const ids = plains.map(idOf);
    // Adds overlap (several mailboxes save at once): packs fill while earlier ones are being written.
    for (let g = 0; g < plains.length; g += 12) {
      const group = plains.slice(g, g + 12).map((p, k) => ({ p, i: g + k }));
      await Promise.all(
        group.map(async ({ p, i }) => {
          const type = i % 10 === 0 ? 'tree' : 'data';
          const id = ids[i] as string;
          const added = packer.add(type, id, sealBlob(key, type, id, p), p.length);
          // Pending (unwritten) blobs read back from the packer as they are.
          const pending = packer.pending(id);
          if (pending === undefined) throw new Error(`blob ${i} is not pending after add`);
          const sealed = await packer.readPending(pending);
          expect(Buffer.from(openBlob(key, pending.entry, sealed, 'pending')).equals(p)).toBe(true);
          return added;
        }),
      );
    }
    await packer.flush();
    expect(sink.packs.size).toBeGreaterThan(10);
    const found = new Map<string, { pack: Buffer; entry: PackEntry }>();
    for (const [packId, pack] of sink.packs) {
      expect(sha256Hex(pack)).toBe(packId);
      const entries = decodePackTail(key, pack, pack.length, packId);
      expect(new Set(entries.map((e) => e.type)).size).toBe(1);
      for (const e of entries) found.set(e.id, { pack, entry: e });
    }
    for (const [i, p] of plains.entries()) {
      const f = found.get(ids[i] as string);
      if (f === undefined) throw new Error(`blob ${i} is in no pack`);
      const sealed = f.pack.subarray(f.entry.offset, f.entry.offset + f.entry.length);
      expect(Buffer.from(openBlob(key, f.entry, sealed, 'blob')).equals(p)).toBe(true);
      expect(packer.pending(ids[i] as string)).toBeUndefined();
    }
  });

  it('takes a blob larger than a pack and its slack', async () => {
    const sink = new SlowSink(0);
    const packer = new Packer(key, 4096, sink);
    const small = blob(1, 500);
    const big = randomBytes(3 * 1024 * 1024);
    await packer.add('data', idOf(small), sealBlob(key, 'data', idOf(small), small), small.length);
    await packer.add('data', idOf(big), sealBlob(key, 'data', idOf(big), big), big.length);
    await packer.flush();
    const [pack] = [...sink.packs.values()];
    if (pack === undefined) throw new Error('no pack written');
    const entries = decodePackTail(key, pack, pack.length, 'pack');
    expect(entries.map((e) => e.id)).toEqual([idOf(small), idOf(big)]);
    const e = entries[1] as PackEntry;
    expect(
      Buffer.from(openBlob(key, e, pack.subarray(e.offset, e.offset + e.length), 'big')).equals(big),
    ).toBe(true);
  });

  it('makes a failed pack write sticky', async () => {
    const packer = new Packer(key, 1024, {
      writePack: async () => {
        throw new Error('disk full');
      },
      packWritten: () => {},
    });
    const p = blob(1, 2000);
    await expect(packer.add('data', idOf(p), sealBlob(key, 'data', idOf(p), p), p.length)).rejects.toThrow(
      'disk full',
    );
    const q = blob(2, 10);
    await expect(packer.add('data', idOf(q), sealBlob(key, 'data', idOf(q), q), q.length)).rejects.toThrow(
      'disk full',
    );
    await expect(packer.flush()).rejects.toThrow('disk full');
  });

  it('holds new blobs back while two sealed packs wait for a slow store', async () => {
    const releases: Array<() => void> = [];
    const packer = new Packer(key, 4096, {
      writePack: () => new Promise<void>((resolve) => releases.push(resolve)),
      packWritten: () => {},
    });
    const add = (i: number) => {
      const p = blob(i, 5000);
      return packer.add('data', idOf(p), sealBlob(key, 'data', idOf(p), p), p.length);
    };
    expect(packer.ready()).toBeUndefined();
    const first = add(1); // fills and seals pack 1: its write starts
    await new Promise((r) => setTimeout(r, 0));
    expect(packer.ready()).toBeUndefined();
    const second = add(2); // pack 2 sealed while pack 1 is still being written
    const backlog = packer.ready();
    expect(backlog).toBeInstanceOf(Promise);
    let free = false;
    void backlog?.then(() => {
      free = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(free).toBe(false);
    releases.shift()?.(); // pack 1 written
    await first;
    await new Promise((r) => setTimeout(r, 0));
    expect(free).toBe(true);
    expect(packer.ready()).toBeUndefined();
    while (releases.length === 0) await new Promise((r) => setTimeout(r, 0));
    releases.shift()?.();
    await second;
    await packer.flush();
  });
});
