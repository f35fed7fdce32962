/**
 * A streaming mboxrd reader: splits an mbox file into messages and hashes each one's unquoted bytes,
 * whatever the file's size, holding at most one separator line and a few bytes at a time (bodies are
 * never collected). The inverse of mbox-writer.ts; the rules are in mboxrd.ts.
 *
 * A new message starts at every line that begins with "From " (the writer quotes all others). For each
 * message the reader reports the SHA-256 and length of its unquoted bytes minus the terminating "\n"
 * (what any mbox reader returns) and, when the message ends in "\n\n", also minus both (the exact bytes
 * of a message that did not end with a line feed): manifest.jsonl's size tells which one is right.
 * With status headers, the first three lines of each message are taken apart and not hashed.
 */
import { createHash, type Hash } from 'node:crypto';
import { parseFromLine, parseStatusBlock } from './mboxrd.js';

const NL = 0x0a;
const GT = 0x3e;
const FROM = [0x46, 0x72, 0x6f, 0x6d, 0x20]; // "From "
/** Longest separator or status line kept (longer ones are cut: they are malformed anyway). */
const MAX_LINE = 64 * 1024;

export interface MboxCandidate {
  size: number;
  sha256: string;
}

export interface MboxMessage {
  /** 0-based position in the file. */
  index: number;
  /** Byte offset of the separator line in the file. */
  offset: number;
  /** The separator line without its newline. */
  fromLine: string;
  sender?: string;
  date?: Date;
  /** Candidates for the exact bytes: minus one "\n" (always, when it ends in "\n"), minus "\n\n". */
  candidates: MboxCandidate[];
  /** Present with status headers: the parsed block, or null when the first lines were not one. */
  status?: { seen: boolean; xstatus: string; keywords: string[] } | null;
}

export class MboxrdReader {
  private readonly statusHeaders: boolean;
  private readonly onMessage: (m: MboxMessage) => void;
  /** Bytes of the file before the first separator (must be none). */
  preamble = 0;
  private pos = 0;
  private atLineStart = true;
  private gt = 0;
  private fromMatched = 0;
  private inFromLine = false;
  private fromLine: Buffer[] = [];
  private fromLineLen = 0;
  private current: MessageHasher | undefined;
  private count = 0;
  /** Absolute offset of the line start being matched, and of the last separator line. */
  private lineStartAt = 0;
  private separatorAt = 0;

  constructor(opts: { statusHeaders?: boolean; onMessage: (m: MboxMessage) => void }) {
    this.statusHeaders = opts.statusHeaders ?? false;
    this.onMessage = opts.onMessage;
  }

  write(chunk: Uint8Array): void {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let i = 0;
    const len = buf.length;
    while (i < len) {
      if (this.inFromLine) {
        const nl = buf.indexOf(NL, i);
        const end = nl < 0 ? len : nl;
        this.keepFromLine(buf.subarray(i, end));
        if (nl < 0) {
          i = len;
          break;
        }
        this.startMessage();
        i = nl + 1;
        this.atLineStart = true;
        continue;
      }
      if (this.atLineStart) {
        if (this.gt === 0 && this.fromMatched === 0) this.lineStartAt = this.pos + i;
        // Count ">" then match "From ", across chunk boundaries (state kept in gt/fromMatched).
        while (i < len && this.fromMatched === 0 && buf[i] === GT) {
          this.gt++;
          i++;
        }
        while (i < len && this.fromMatched < 5 && buf[i] === FROM[this.fromMatched]) {
          this.fromMatched++;
          i++;
        }
        if (this.fromMatched === 5) {
          if (this.gt === 0) {
            this.endMessage();
            this.separatorAt = this.lineStartAt;
            this.inFromLine = true;
            this.fromLine = [Buffer.from(FROM)];
            this.fromLineLen = 5;
          } else {
            this.emit(Buffer.alloc(this.gt - 1, GT));
            this.emit(Buffer.from(FROM));
          }
          this.resetLineStart();
          continue;
        }
        if (i === len) break; // undecided: wait for the next chunk
        this.flushLineStart();
      }
      const nl = buf.indexOf(NL, i);
      const end = nl < 0 ? len : nl + 1;
      this.emit(buf.subarray(i, end));
      i = end;
      if (nl >= 0) this.atLineStart = true;
    }
    this.pos += len;
  }

  /** Call once at the end of the file. */
  end(): void {
    if (this.inFromLine) {
      this.startMessage();
    } else if (this.atLineStart) {
      this.flushLineStart();
    }
    this.endMessage();
  }

  private resetLineStart(): void {
    this.atLineStart = false;
    this.gt = 0;
    this.fromMatched = 0;
  }

  /** The line start did not turn out to be a "From " line: its bytes are content. */
  private flushLineStart(): void {
    if (this.gt > 0) this.emit(Buffer.alloc(this.gt, GT));
    if (this.fromMatched > 0) this.emit(Buffer.from(FROM.slice(0, this.fromMatched)));
    this.resetLineStart();
  }

  private keepFromLine(part: Buffer): void {
    if (this.fromLineLen >= MAX_LINE) return;
    const room = MAX_LINE - this.fromLineLen;
    this.fromLine.push(Buffer.from(part.subarray(0, room)));
    this.fromLineLen += Math.min(room, part.length);
  }

  private startMessage(): void {
    this.inFromLine = false;
    const line = Buffer.concat(this.fromLine).toString('latin1');
    this.current = new MessageHasher(this.count++, this.separatorAt, line, this.statusHeaders);
    this.fromLine = [];
    this.fromLineLen = 0;
  }

  private emit(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.current === undefined) this.preamble += bytes.length;
    else this.current.update(bytes);
  }

  private endMessage(): void {
    if (this.current !== undefined) this.onMessage(this.current.finish());
    this.current = undefined;
  }
}

/** Hashes one message's content with the last two bytes held back (see the module comment). */
class MessageHasher {
  private readonly hash: Hash = createHash('sha256');
  private tail = Buffer.alloc(0);
  private length = 0;
  private statusLines: string[] | undefined;
  private statusBuf: Buffer[] = [];
  private statusLen = 0;

  constructor(
    private readonly index: number,
    private readonly offset: number,
    private readonly fromLine: string,
    statusHeaders: boolean,
  ) {
    if (statusHeaders) this.statusLines = [];
  }

  update(bytes: Buffer): void {
    let data = bytes;
    if (this.statusLines !== undefined && this.statusLines.length < 3) data = this.takeStatus(data);
    if (data.length === 0) return;
    this.length += data.length;
    const all = this.tail.length === 0 ? data : Buffer.concat([this.tail, data]);
    if (all.length <= 2) {
      this.tail = Buffer.from(all);
      return;
    }
    this.hash.update(all.subarray(0, all.length - 2));
    this.tail = Buffer.from(all.subarray(all.length - 2));
  }

  /** Takes the first three lines apart (status mode); returns what follows them. */
  private takeStatus(data: Buffer): Buffer {
    let i = 0;
    while (i < data.length && (this.statusLines as string[]).length < 3) {
      const nl = data.indexOf(NL, i);
      const end = nl < 0 ? data.length : nl + 1;
      if (this.statusLen < MAX_LINE) this.statusBuf.push(Buffer.from(data.subarray(i, end)));
      this.statusLen += end - i;
      i = end;
      if (nl >= 0) {
        (this.statusLines as string[]).push(Buffer.concat(this.statusBuf).toString('utf8'));
        this.statusBuf = [];
        this.statusLen = 0;
      }
    }
    return data.subarray(i);
  }

  finish(): MboxMessage {
    const parsed = parseFromLine(this.fromLine);
    const out: MboxMessage = {
      index: this.index,
      offset: this.offset,
      fromLine: this.fromLine,
      candidates: [],
    };
    if (parsed !== undefined) {
      out.sender = parsed.sender;
      if (parsed.date !== undefined) out.date = parsed.date;
    }
    if (this.statusLines !== undefined) {
      out.status = this.statusLines.length === 3 ? (parseStatusBlock(this.statusLines) ?? null) : null;
    }
    const t = this.tail;
    if (t.length >= 1 && t[t.length - 1] === NL) {
      if (t.length === 2 && t[0] === NL) {
        out.candidates.push({ size: this.length - 2, sha256: this.hash.copy().digest('hex') });
      }
      const h = this.hash.copy();
      h.update(t.subarray(0, t.length - 1));
      out.candidates.push({ size: this.length - 1, sha256: h.digest('hex') });
    }
    return out;
  }
}
