#!/usr/bin/env node
// A zip past 4 GiB, through mailark's zip writer (the sink `mailark export --out X.zip` uses): entry
// sizes and local-header offsets beyond 32 bits need ZIP64 records (APPNOTE 6.3 §4.5.3). Writes five
// 1 GiB entries (stored: `--compression 0`, as incompressible attachments end up) and small entries
// placed past the 4 GiB mark, then unzip -t (every CRC) and Python's zipfile (every SHA-256) must read
// it all back. Prints write speed and peak RSS. Needs ~5 GiB free in the temp dir; removes its files.
//
//   npm run build && node bench/zip64.mjs [--gib 5] [--keep]
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openArchiveSink } from '../packages/core/dist/index.js';

const { values: opt } = parseArgs({
  options: { gib: { type: 'string', default: '5' }, keep: { type: 'boolean', default: false } },
});
const GIB = 1024 ** 3;
const bigEntries = Math.max(5, Number(opt.gib));
const work = mkdtempSync(join(tmpdir(), 'mailark-zip64-'));
const zip = join(work, 'big.zip');
const log = (s) => process.stderr.write(`${s}\n`);

/** `size` bytes of one random MiB, each MiB stamped with its index (no two MiB alike); and its SHA-256. */
function entryData(seed, size) {
  const block = randomFillSync(Buffer.alloc(1024 * 1024));
  const hash = createHash('sha256');
  async function* gen() {
    for (let off = 0, i = 0; off < size; off += block.length, i++) {
      const piece = Buffer.from(block.subarray(0, Math.min(block.length, size - off)));
      piece.writeUInt32BE(seed, 0);
      piece.writeUInt32BE(i, 4);
      hash.update(piece);
      yield piece;
    }
  }
  return { gen, digest: () => hash.digest('hex') };
}

const expected = {};
let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 100);
try {
  const t0 = performance.now();
  const sink = await openArchiveSink(zip, { compressionLevel: 0, tmpDir: work });
  const mtime = new Date('2024-06-01T02:00:00Z');
  for (let i = 0; i < bigEntries; i++) {
    const name = `tenant/user/eml/INBOX/${i + 1}.eml`;
    const d = entryData(i, GIB);
    await sink.addStream(name, GIB, d.gen(), { mtime });
    expected[name] = d.digest();
    log(`zip64: ${i + 1}/${bigEntries} GiB written`);
  }
  // Small entries whose local headers lie past 4 GiB: their offsets exist only in ZIP64 extra fields.
  for (let i = 0; i < 3; i++) {
    const name = `tenant/user/eml/Archive/${i + 1}.eml`;
    const bytes = Buffer.from(`Subject: after 4 GiB ${i}\r\n\r\nsmall ${i}\r\n`);
    await sink.addFile(name, bytes, { mtime });
    expected[name] = createHash('sha256').update(bytes).digest('hex');
  }
  const result = await sink.finish();
  const writeMs = performance.now() - t0;
  clearInterval(sampler);
  const size = statSync(zip).size;
  if (size <= 4 * GIB) throw new Error(`the zip is ${size} bytes: not past 4 GiB`);

  const t1 = performance.now();
  const unzip = spawnSync('unzip', ['-tq', zip], { encoding: 'utf8' });
  const unzipMs = performance.now() - t1;
  if (unzip.status !== 0)
    throw new Error(`unzip -t failed (${unzip.status}): ${unzip.stdout}${unzip.stderr}`);

  const t2 = performance.now();
  const py = spawnSync(
    'python3',
    [
      '-c',
      `import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
out = {}
for i in z.infolist():
    h = hashlib.sha256()
    with z.open(i) as f:
        for b in iter(lambda: f.read(1 << 20), b''):
            h.update(b)
    out[i.filename] = h.hexdigest()
print(json.dumps(out))`,
      zip,
    ],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  );
  const pyMs = performance.now() - t2;
  if (py.status !== 0) throw new Error(`python zipfile failed: ${py.stderr}`);
  const got = JSON.parse(py.stdout);
  const names = Object.keys(expected).sort();
  if (JSON.stringify(Object.keys(got).sort()) !== JSON.stringify(names))
    throw new Error(`python read entries ${Object.keys(got)} instead of ${names}`);
  for (const n of names)
    if (got[n] !== expected[n]) throw new Error(`${n}: SHA-256 differs after reading back`);

  const mib = (b) => (b / 1048576).toFixed(0);
  console.log(
    `\nmailark zip64 bench — ${names.length} entries, ${(size / GIB).toFixed(2)} GiB, node ${process.version}\n`,
  );
  console.log(
    `write (stored)     ${(writeMs / 1000).toFixed(1)} s  ${(size / 1e6 / (writeMs / 1000)).toFixed(0)} MB/s  peak RSS ${mib(peakRss)} MiB`,
  );
  console.log(`unzip -t           ${(unzipMs / 1000).toFixed(1)} s  ok (every CRC-32)`);
  console.log(
    `python zipfile     ${(pyMs / 1000).toFixed(1)} s  ok (every entry's SHA-256 equals what was written)`,
  );
  console.log(`archive SHA-256    ${result.sha256}`);
} finally {
  clearInterval(sampler);
  if (!opt.keep) rmSync(work, { recursive: true, force: true });
}
