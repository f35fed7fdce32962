/**
 * Storing one message as data blobs: its header block, then content-defined chunks of the rest.
 *
 * Copies of one mail delivered to many users differ only in their top headers (Received, Delivered-To,
 * Return-Path), and a forwarded attachment reappears inside other messages. Hashing whole messages
 * would dedup neither; cutting the header block off and chunking the body with the repository's CDC
 * chunker makes each extra copy cost about one header blob.
 *
 * Rules it keeps:
 * - the concatenation of the returned blob ids' plaintexts is exactly the message (size and SHA-256
 *   are computed over the bytes as given, so readMessageBytes can verify them);
 * - the header block is the bytes up to and including the first empty line (CRLF or bare LF); a message
 *   without one is all header if it ends within MAX_HEADER_BYTES; past that (pathological mail) no
 *   header blob is cut and the whole message goes through the chunker, so no blob exceeds max(chunk,
 *   MAX_HEADER_BYTES);
 * - streaming: pieces are written as they arrive and memory stays bounded by the header cap plus one
 *   chunk, whatever the message size, plus the pieces in flight; no byte is copied unless a chunk spans
 *   two pieces (and, on a worker, the one copy that sends it there);
 * - the same blobs wherever the work is done: on a seal pool worker (repository.cutMessage) or on the
 *   caller's thread, the same code cuts, and the ids come back in message order.
 */
import { createHash, type Hash } from 'node:crypto';
import type { BlobId } from '../mail/snapshot.js';
import { Chunker, type ChunkerParams, type GearChunker } from './chunker.js';

/** What storing a message needs of a repository (Repository satisfies it). */
export interface BlobSaver {
  /**
   * Stores plaintext as a blob of that type, deduplicated: added=false when the blob was already known.
   * `id`, when given, is the blob's id as cutMessage's thread computed it (saves hashing it again).
   */
  saveBlob(
    type: 'data',
    plain: Uint8Array,
    id?: BlobId,
  ): Promise<{ id: BlobId; added: boolean; storedBytes: number }>;
  /**
   * Optional: a message hashed and cut on another thread (the seal pool's workers), undefined when there
   * is none. Its blobs and ids must be exactly those of MessageCutter and saveBlob on this thread.
   */
  cutMessage?(chunker: ChunkerParams): RemoteCut | undefined;
}

/** Blobs completed by a piece, in message order: their ids and plaintext lengths. */
export interface CutBlobs {
  ids: BlobId[];
  lengths: number[];
}

/**
 * A message being hashed and cut elsewhere. push() each piece in order, then finish() once (or abort()
 * to give up); results come back in that order. The pieces themselves stay with the caller.
 */
export interface RemoteCut {
  push(piece: Uint8Array): Promise<CutBlobs>;
  /** The last blob, if any, and the SHA-256 and size of all the bytes pushed. */
  finish(): Promise<CutBlobs & { sha256: string; size: number }>;
  /** Drops the stream's state where it is cut; its pending results never come. */
  abort(): void;
}

/** The result of storing one message. */
export interface MessageRecord {
  /** Data blob ids, header block first; their concatenation is the exact message. */
  content: BlobId[];
  size: number;
  sha256: string;
  /** Blobs this message referenced, and how many of them were new to the repository. */
  blobs: number;
  addedBlobs: number;
  /** Bytes added to the repository for this message (after dedup and compression). */
  storedBytes: number;
}

/** Longest header block kept as one blob; beyond it the message is treated as headerless. */
export const MAX_HEADER_BYTES = 1024 * 1024;

/**
 * Index just past the first empty line of `buf` (a line holding nothing, or only CR, before its LF),
 * or -1 when there is none. An empty line at the very start counts.
 */
export function headerBlockEnd(buf: Uint8Array): number {
  let lineStart = 0;
  for (;;) {
    const lf = buf.indexOf(0x0a, lineStart);
    if (lf < 0) return -1;
    const len = lf - lineStart;
    if (len === 0 || (len === 1 && buf[lineStart] === 0x0d)) return lf + 1;
    lineStart = lf + 1;
  }
}

/**
 * Cuts a message into its blobs' plaintexts: the header block, then the chunker's chunks of the rest
 * (see the rules above). push() returns the blobs a piece completed (possibly none), finish() the last.
 * Returns views of the pieces, like the chunker; detach() copies what it holds of them.
 *
 * Self-contained like GearChunker (the seal pool's workers run it from its source text): besides its
 * chunker it uses only headerBlockEnd and MAX_HEADER_BYTES, which the workers define from this module.
 */
export class MessageCutter {
  /** Bytes held while the header block's end is not yet known (at most one, joined, buffer). */
  private head: Uint8Array[] = [];
  private headLen = 0;
  private inBody = false;

  constructor(private readonly chunker: GearChunker) {}

  push(piece: Uint8Array): Uint8Array[] {
    if (this.inBody) return this.chunker.push(piece);
    // Most mail arrives in one piece: its header block is found and cut without copying anything.
    // Headers are small: re-joining the held pieces until the empty line shows up costs little.
    const held = this.head.length === 0 ? piece : Buffer.concat([...this.head, piece]);
    this.headLen += piece.length;
    this.head = [held];
    const end = headerBlockEnd(held);
    if (end >= 0 && end <= MAX_HEADER_BYTES) {
      this.enterBody();
      return [held.subarray(0, end), ...this.chunker.push(held.subarray(end))];
    }
    if (this.headLen > MAX_HEADER_BYTES) {
      // No header block within the cap: chunk everything from the first byte.
      this.enterBody();
      return this.chunker.push(held);
    }
    return [];
  }

  /** The last blob: the rest of the chunker, or a message that ended inside its headers (all header). */
  finish(): Uint8Array | undefined {
    const last = !this.inBody && this.headLen > 0 ? this.head[0] : this.chunker.finish();
    this.head = [];
    return last;
  }

  detach(): void {
    const held = this.head[0];
    if (held !== undefined) this.head = [Uint8Array.from(held)];
    this.chunker.detach();
  }

  private enterBody(): void {
    this.inBody = true;
    this.head = [];
    this.headLen = 0;
  }
}

type Saved = { id: BlobId; added: boolean; storedBytes: number };

/**
 * Writes one message, piece by piece. Call write() for each piece in order, then finish() once (or
 * abort() when giving up). The writer keeps views of the pieces, not copies (a message is cut and
 * sealed straight from the bytes IMAP delivered): pieces must not change until finish() has resolved.
 *
 * When the repository offers cutMessage (a seal pool with workers), hashing, cutting and blob ids are
 * computed there and this thread only slices the new blobs out of the pieces it holds; otherwise all
 * of it happens here. Both give the same ids, in the same order.
 */
export class MessageRecordWriter {
  private readonly remote: RemoteCut | undefined;
  /** Here (exactly when there is no remote cut): the message hash and cutter. */
  private readonly local: { hash: Hash; cutter: MessageCutter } | undefined;
  /** Remote: the pieces not yet cut, with the stream offset of the first, and where cutting is. */
  private held: Uint8Array[] = [];
  private heldStart = 0;
  private cutTo = 0;
  private size = 0;
  private readonly content: BlobId[] = [];
  private added = 0;
  private stored = 0;
  private finished = false;
  /** The saves of the last piece written, still in flight. */
  private previous: Promise<void> = Promise.resolve();

  constructor(
    private readonly repo: BlobSaver,
    chunker: ChunkerParams,
  ) {
    this.remote = repo.cutMessage?.(chunker);
    this.local =
      this.remote === undefined
        ? { hash: createHash('sha256'), cutter: new MessageCutter(new Chunker(chunker)) }
        : undefined;
  }

  /**
   * Hashes and cuts a piece and starts storing its blobs; resolves once the previous piece's blobs
   * are stored. Not an async function on purpose, like saveAll: nothing here may keep the piece alive
   * after its blobs are handed to the repository (a suspended frame would, until they are stored).
   */
  write(piece: Uint8Array): Promise<void> {
    try {
      if (this.finished) throw new Error('MessageRecordWriter: write after finish');
      if (piece.length === 0) return Promise.resolve();
      this.size += piece.length;
      if (this.local !== undefined) {
        this.local.hash.update(piece);
        return this.saveAll(this.local.cutter.push(piece));
      }
      this.held.push(piece);
      return this.saveCut((this.remote as RemoteCut).push(piece));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async finish(): Promise<MessageRecord> {
    if (this.finished) throw new Error('MessageRecordWriter: finish called twice');
    this.finished = true;
    let sha256: string;
    if (this.local !== undefined) {
      const last = this.local.cutter.finish();
      await this.saveAll(last === undefined ? [] : [last]);
      await this.previous;
      sha256 = this.local.hash.digest('hex');
    } else {
      const end = (this.remote as RemoteCut).finish();
      await this.saveCut(end);
      await this.previous;
      const r = await end;
      if (r.size !== this.size)
        throw new Error(`message cut elsewhere has ${r.size} bytes, not ${this.size}`);
      sha256 = r.sha256;
    }
    return {
      content: this.content,
      size: this.size,
      sha256,
      blobs: this.content.length,
      addedBlobs: this.added,
      storedBytes: this.stored,
    };
  }

  /** Gives up on the message (its pieces could not all be read): frees what is held for it elsewhere. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.held = [];
    this.remote?.abort();
  }

  /**
   * Starts saving a piece's blobs all at once (the repository seals them together, off this thread),
   * then waits for the previous piece's: one piece is being sealed while the next is read and cut,
   * and no more than two pieces are held. Ids land in message order whatever finishes first.
   */
  private saveAll(plains: Uint8Array[]): Promise<void> {
    const slots: number[] = [];
    const saves: Array<Promise<Saved>> = [];
    for (const plain of plains) {
      if (plain.length === 0) continue;
      slots.push(this.content.push('') - 1);
      saves.push(this.repo.saveBlob('data', plain));
    }
    return this.chain(
      Promise.all(saves).then((results) => {
        for (const [i, r] of results.entries()) {
          this.content[slots[i] as number] = r.id;
          this.count(r);
        }
      }),
    );
  }

  /**
   * saveAll for a piece cut elsewhere: once its blob ids are back (in order: one stream's results
   * arrive in the order pushed), slices each blob out of the held pieces and saves it under its id.
   */
  private saveCut(cut: Promise<CutBlobs>): Promise<void> {
    return this.chain(
      cut.then(({ ids, lengths }) => {
        const saves: Array<Promise<Saved>> = [];
        for (const [i, id] of ids.entries()) {
          const length = lengths[i] as number;
          this.content.push(id);
          saves.push(this.repo.saveBlob('data', this.slice(this.cutTo, length), id));
          this.cutTo += length;
        }
        // Pieces wholly cut are the repository's business now (the seal pool copies the new blobs).
        while (this.held.length > 0 && this.heldStart + (this.held[0] as Uint8Array).length <= this.cutTo)
          this.heldStart += (this.held.shift() as Uint8Array).length;
        return Promise.all(saves).then((results) => {
          for (const r of results) this.count(r);
        });
      }),
    );
  }

  /** The held bytes [off, off+length): a view when they lie in one piece (almost always). */
  private slice(off: number, length: number): Uint8Array {
    let start = this.heldStart;
    for (let i = 0; i < this.held.length; i++) {
      const piece = this.held[i] as Uint8Array;
      const at = off - start;
      if (at < piece.length) {
        if (at + length <= piece.length) return piece.subarray(at, at + length);
        const out = new Uint8Array(length);
        let w = 0;
        for (let j = i, from = at; w < length; j++, from = 0) {
          const part = (this.held[j] as Uint8Array).subarray(from, from + length - w);
          out.set(part, w);
          w += part.length;
        }
        return out;
      }
      start += piece.length;
    }
    throw new Error(`MessageRecordWriter: blob at ${off} (+${length}) is outside the held pieces`);
  }

  private count(r: Saved): void {
    if (r.added) this.added++;
    this.stored += r.storedBytes;
  }

  /** Makes `done` the last piece's saves; returns the previous piece's. */
  private chain(done: Promise<void>): Promise<void> {
    // Handled here so that a failure while the caller is still writing is not an unhandled rejection;
    // it is thrown by the next write() or by finish().
    done.catch(() => {});
    const previous = this.previous;
    this.previous = done;
    return previous;
  }
}

/** Stores a message given whole or as a stream of pieces. */
export async function storeMessage(
  repo: BlobSaver,
  chunker: ChunkerParams,
  bytes: Uint8Array | AsyncIterable<Uint8Array>,
): Promise<MessageRecord> {
  const w = new MessageRecordWriter(repo, chunker);
  try {
    if (bytes instanceof Uint8Array) await w.write(bytes);
    else for await (const piece of bytes) await w.write(piece);
  } catch (err) {
    w.abort();
    throw err;
  }
  return w.finish();
}
