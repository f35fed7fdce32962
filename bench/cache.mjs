#!/usr/bin/env node
// The local metadata cache at the 2 GB / 40k-message scale, against S3 (in-process s3rver, or the
// endpoint in MAILARK_BENCH_S3_ENDPOINT/_BUCKET/_ACCESS_KEY_ID/_SECRET_ACCESS_KEY): Repository.open
// (every index object) + listSnapshots (every snapshot), without a cache, with a cold cache (first run
// on a machine: fills it) and a warm one. Prints wall time and what reached the store.
// The index is synthetic (entries of packs that are not written): open never reads packs.
// Needs a build of @mailark/core (npm run build).
//
//   node bench/cache.mjs [--blobs 140000] [--snapshots 30] [--runs 3]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Repository, RetryingStore, S3Store } from '../packages/core/dist/index.js';
import { startS3 } from '../scripts/lib/s3-server.mjs';

const { values: opt } = parseArgs({
  options: {
    blobs: { type: 'string', default: '140000' },
    snapshots: { type: 'string', default: '30' },
    runs: { type: 'string', default: '3' },
  },
});
const env = process.env;
const PASSWORD = 'bench cache password';
const KDF = { N: 1024, r: 8, p: 1 };
const server = env.MAILARK_BENCH_S3_ENDPOINT ? undefined : await startS3({});
const s3 = new S3Store({
  bucket: env.MAILARK_BENCH_S3_BUCKET ?? server.bucket,
  prefix: `bench-cache-${Date.now().toString(36)}`,
  endpoint: env.MAILARK_BENCH_S3_ENDPOINT ?? server.endpoint,
  region: env.MAILARK_BENCH_S3_REGION ?? 'us-east-1',
  credentials: {
    accessKeyId: env.MAILARK_BENCH_S3_ACCESS_KEY_ID ?? server.accessKeyId,
    secretAccessKey: env.MAILARK_BENCH_S3_SECRET_ACCESS_KEY ?? server.secretAccessKey,
  },
});
const store = new RetryingStore(s3);
const cacheDir = mkdtempSync(join(tmpdir(), 'mailark-bench-cache-'));

try {
  // ~1,000 blobs per 16 MiB pack, five packs per index object, as backup's flushes write them.
  const repo = await Repository.init(store, PASSWORD, { kdf: KDF });
  const blobs = Number(opt.blobs);
  const perPack = 1000;
  let packs = new Map();
  for (let i = 0; i < blobs; i += perPack) {
    const entries = Array.from({ length: Math.min(perPack, blobs - i) }, (_, k) => ({
      type: 'data',
      id: randomBytes(32).toString('hex'),
      offset: k * 16_000,
      length: 16_000,
      rawLength: 15_900,
    }));
    packs.set(randomBytes(32).toString('hex'), entries);
    if (packs.size === 5) {
      await repo.writeIndexObject(packs);
      packs = new Map();
    }
  }
  if (packs.size > 0) await repo.writeIndexObject(packs);
  const tree = await repo.saveTree({ v: 1, mailboxes: [] });
  for (let d = 0; d < Number(opt.snapshots); d++) {
    const time = new Date(Date.UTC(2026, 10, 1 + d, 2)).toISOString();
    await repo.saveSnapshot({
      v: 1,
      time,
      endTime: time,
      host: 'bench',
      tenant: 'bench.test',
      tags: [],
      tree,
    });
  }
  await repo.close();
  let indexBytes = 0;
  let indexObjects = 0;
  for await (const o of s3.list('index/')) {
    indexBytes += o.size;
    indexObjects++;
  }

  const measure = async (label, opts, before = async () => {}) => {
    const samples = [];
    for (let r = 0; r < Number(opt.runs); r++) {
      await before();
      const c0 = { ...s3.counters };
      const t0 = performance.now();
      const opened = await Repository.open(store, PASSWORD, opts);
      const n = (await opened.listSnapshots()).length;
      const ms = performance.now() - t0;
      await opened.close();
      samples.push({
        ms,
        gets: s3.counters.gets - c0.gets,
        bytesRead: s3.counters.bytesRead - c0.bytesRead,
        n,
      });
    }
    samples.sort((a, b) => a.ms - b.ms);
    const median = samples[Math.floor(samples.length / 2)];
    return { label, ...median };
  };
  await measure('warm-up (JIT), not shown', {});
  const rows = [
    await measure('no cache (--no-cache)', {}),
    await measure('cold cache (first run here)', { cacheDir }, async () =>
      rmSync(cacheDir, { recursive: true, force: true }),
    ),
    await measure('warm cache', { cacheDir }),
  ];
  console.log(
    `\nopen + listSnapshots on ${server ? 's3rver' : 's3'}: ${blobs} blobs in ${indexObjects} index objects ` +
      `(${(indexBytes / 1048576).toFixed(1)} MiB), ${opt.snapshots} snapshots; median of ${opt.runs}\n`,
  );
  for (const r of rows)
    console.log(
      `${r.label.padEnd(28)} ${r.ms.toFixed(0).padStart(6)} ms  ${String(r.gets).padStart(5)} GETs  ${String(r.bytesRead).padStart(9)} B from the store`,
    );
} finally {
  await s3.close();
  await server?.stop();
  if (server) rmSync(server.dir, { recursive: true, force: true });
  rmSync(cacheDir, { recursive: true, force: true });
}
