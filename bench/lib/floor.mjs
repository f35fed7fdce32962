// The per-byte work every backup of a corpus must do, measured alone on one thread with mailark's own
// code: SHA-256 of each message, the cut into header block and content-defined chunks, an HMAC id per
// blob, and, for the blobs not seen before, compression and AES-256-GCM sealing (sealBlob). No IMAP,
// no packs, no index, no trees, no threads: a floor under what the initial backup costs in CPU.
//
// With the CPU the machine spent serving and reading the raw fetch (Dovecot, kernel and client), it
// tells whether a target wall time is within reach on this many cores at all (see bench/run.mjs).
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Chunker } from '../../packages/core/dist/backup/chunker.js';
import { MessageCutter } from '../../packages/core/dist/backup/message-record.js';
import { sealBlob } from '../../packages/core/dist/repo/pack.js';
import { DEFAULT_CHUNKER } from '../../packages/core/dist/repo/repo-config.js';
import { filesUnder } from './measure.mjs';

/** A message file of a Maildir: a file in a cur/ or new/ folder. */
const MESSAGE_FILE = /[/](cur|new)[/][^/]+$/;

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * Runs the per-byte work over every message file under `mailRoot`; returns the bytes seen, the bytes
 * of new blobs, and the CPU milliseconds of each step (reading the files is not counted).
 */
export function perByteFloor(mailRoot) {
  const idKey = randomBytes(32);
  const sealKey = randomBytes(32);
  const chunker = { ...DEFAULT_CHUNKER, seed: randomBytes(16).toString('hex') };
  const seen = new Set();
  const ms = { sha256: 0, cut: 0, ids: 0, seal: 0 };
  let bytes = 0;
  let newBytes = 0;
  let sealedBytes = 0;
  for (const file of filesUnder(mailRoot)) {
    if (!MESSAGE_FILE.test(file)) continue;
    const message = readFileSync(file);
    bytes += message.length;
    let t = cpuMs();
    createHash('sha256').update(message).digest('hex');
    ms.sha256 += cpuMs() - t;
    t = cpuMs();
    const cutter = new MessageCutter(new Chunker(chunker));
    const blobs = cutter.push(message);
    const last = cutter.finish();
    if (last !== undefined && last.length > 0) blobs.push(last);
    ms.cut += cpuMs() - t;
    for (const blob of blobs) {
      t = cpuMs();
      const id = createHmac('sha256', idKey).update(blob).digest('hex');
      ms.ids += cpuMs() - t;
      if (seen.has(id)) continue;
      seen.add(id);
      newBytes += blob.length;
      t = cpuMs();
      sealedBytes += sealBlob(sealKey, 'data', id, blob).length;
      ms.seal += cpuMs() - t;
    }
  }
  const totalMs = ms.sha256 + ms.cut + ms.ids + ms.seal;
  return { bytes, newBytes, sealedBytes, ms, totalMs };
}
