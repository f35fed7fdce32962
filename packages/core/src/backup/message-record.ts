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
 *   chunk, whatever the message size; no byte is copied unless a chunk spans two pieces.
 */
import { createHash, type Hash } from 'node:crypto';
import type { BlobId } from '../mail/snapshot.js';
import { Chunker, type ChunkerParams } from './chunker.js';

/** What storing a message needs of a repository (Repository satisfies it). */
export interface BlobSaver {
  /** Stores plaintext as a blob of that type, deduplicated: added=false when the blob was already known. */
  saveBlob(type: 'data', plain: Uint8Array): Promise<{ id: BlobId; added: boolean; storedBytes: number }>;
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
 * Writes one message, piece by piece. Call write() for each piece in order, then finish() once.
 * The writer keeps views of the pieces, not copies (a message is hashed, chunked and sealed straight
 * from the bytes IMAP delivered): pieces must not change until finish() has resolved.
 */
export class MessageRecordWriter {
  private readonly hash: Hash = createHash('sha256');
  private readonly chunker: Chunker;
  private size = 0;
  /** Bytes held while the header block's end is not yet known. */
  private head: Uint8Array[] = [];
  private headLen = 0;
  private inBody = false;
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
    this.chunker = new Chunker(chunker);
  }

  /**
   * Hashes and chunks a piece and starts storing its blobs; resolves once the previous piece's blobs
   * are stored. Not an async function on purpose, like saveAll: nothing here may keep the piece alive
   * after its blobs are handed to the repository (a suspended frame would, until they are stored).
   */
  write(piece: Uint8Array): Promise<void> {
    try {
      if (this.finished) throw new Error('MessageRecordWriter: write after finish');
      if (piece.length === 0) return Promise.resolve();
      this.hash.update(piece);
      this.size += piece.length;
      if (this.inBody) return this.saveAll(this.chunker.push(piece));

      // Most mail arrives in one piece: its header block is found and cut without copying anything.
      // Headers are small: re-joining the held pieces until the empty line shows up costs little.
      const held = this.head.length === 0 ? piece : Buffer.concat([...this.head, piece]);
      this.headLen += piece.length;
      this.head = [held];
      const end = headerBlockEnd(held);
      if (end >= 0 && end <= MAX_HEADER_BYTES) {
        this.enterBody();
        return this.saveAll([held.subarray(0, end), ...this.chunker.push(held.subarray(end))]);
      }
      if (this.headLen > MAX_HEADER_BYTES) {
        // No header block within the cap: chunk everything from the first byte.
        this.enterBody();
        return this.saveAll(this.chunker.push(held));
      }
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async finish(): Promise<MessageRecord> {
    if (this.finished) throw new Error('MessageRecordWriter: finish called twice');
    this.finished = true;
    await this.saveLast();
    await this.previous;
    return {
      content: this.content,
      size: this.size,
      sha256: this.hash.digest('hex'),
      blobs: this.content.length,
      addedBlobs: this.added,
      storedBytes: this.stored,
    };
  }

  /** The last blob: the rest of the chunker, or a message that ended inside its headers (all header). */
  private saveLast(): Promise<void> {
    const last = !this.inBody && this.headLen > 0 ? this.head[0] : this.chunker.finish();
    this.head = [];
    return last === undefined ? Promise.resolve() : this.saveAll([last]);
  }

  private enterBody(): void {
    this.inBody = true;
    this.head = [];
    this.headLen = 0;
  }

  /**
   * Starts saving a piece's blobs all at once (the repository seals them together, off this thread),
   * then waits for the previous piece's: one piece is being sealed while the next is read and chunked,
   * and no more than two pieces are held. Ids land in message order whatever finishes first.
   */
  private saveAll(plains: Uint8Array[]): Promise<void> {
    const slots: number[] = [];
    const saves: Array<Promise<{ id: BlobId; added: boolean; storedBytes: number }>> = [];
    for (const plain of plains) {
      if (plain.length === 0) continue;
      slots.push(this.content.push('') - 1);
      saves.push(this.repo.saveBlob('data', plain));
    }
    const done = Promise.all(saves).then((results) => {
      for (const [i, r] of results.entries()) {
        this.content[slots[i] as number] = r.id;
        if (r.added) this.added++;
        this.stored += r.storedBytes;
      }
    });
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
  if (bytes instanceof Uint8Array) await w.write(bytes);
  else for await (const piece of bytes) await w.write(piece);
  return w.finish();
}
