#!/usr/bin/env node
// Object store throughput: LocalDirStore (fsync'd puts) and S3Store (in-process s3rver, or the endpoint
// in MAILARK_BENCH_S3_ENDPOINT/_BUCKET/_ACCESS_KEY_ID/_SECRET_ACCESS_KEY), on the shapes the repository
// produces: 16 MiB packs, small objects (index, snapshots, locks), ranged reads of one blob, listings.
// Needs a build of @mailark/core (npm run build). Bounded: a few hundred requests per figure.
//
//   node bench/stores.mjs [--only local|s3] [--json]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalDirStore, RetryingStore, S3Store } from '../packages/core/dist/index.js';
import { startS3 } from '../scripts/lib/s3-server.mjs';

const { values: opt } = parseArgs({
  options: { only: { type: 'string' }, json: { type: 'boolean', default: false } },
});
const MiB = 1 << 20;

/** Runs `tasks` with `limit` in flight; returns elapsed milliseconds. */
async function timed(limit, tasks) {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return performance.now() - t0;
}

async function measure(name, store, scale) {
  const rows = [];
  const packs = Array.from({ length: scale.packs }, () => randomBytes(16 * MiB));
  let ms = await timed(
    4,
    packs.map((p, i) => () => store.put(`data/${String(i % 256).padStart(2, '0')}/pack${i}`, p)),
  );
  rows.push({
    store: name,
    op: 'put 16 MiB pack (4 parallel)',
    n: packs.length,
    ms,
    rate: `${((packs.length * 16) / (ms / 1000)).toFixed(0)} MB/s`,
  });

  const small = randomBytes(1024);
  ms = await timed(
    8,
    Array.from({ length: scale.small }, (_, i) => () => store.put(`index/${i}`, small)),
  );
  rows.push({
    store: name,
    op: 'put 1 KiB object (8 parallel)',
    n: scale.small,
    ms,
    rate: `${(scale.small / (ms / 1000)).toFixed(0)} obj/s`,
  });

  ms = await timed(
    8,
    Array.from(
      { length: scale.ranged },
      (_, i) => () =>
        store.get('data/00/pack0', { offset: (i * 7919 * 4096) % (16 * MiB - 4096), length: 4096 }),
    ),
  );
  rows.push({
    store: name,
    op: 'ranged get 4 KiB of a pack (8 parallel)',
    n: scale.ranged,
    ms,
    rate: `${(scale.ranged / (ms / 1000)).toFixed(0)} req/s`,
  });

  ms = await timed(1, [() => store.get('data/00/pack0')]);
  rows.push({
    store: name,
    op: 'get whole 16 MiB pack',
    n: 1,
    ms,
    rate: `${(16 / (ms / 1000)).toFixed(0)} MB/s`,
  });

  let listed = 0;
  ms = await timed(1, [
    async () => {
      for await (const _ of store.list('index/')) listed++;
    },
  ]);
  rows.push({
    store: name,
    op: `list ${listed} keys`,
    n: listed,
    ms,
    rate: `${(listed / (ms / 1000)).toFixed(0)} keys/s`,
  });
  return rows;
}

const rows = [];
if (opt.only !== 's3') {
  const dir = mkdtempSync(join(tmpdir(), 'mailark-bench-store-'));
  try {
    rows.push(...(await measure('local', new LocalDirStore(dir), { packs: 8, small: 1000, ranged: 2000 })));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (opt.only !== 'local') {
  const env = process.env;
  const server = env.MAILARK_BENCH_S3_ENDPOINT ? undefined : await startS3({});
  const s3 = new S3Store({
    bucket: env.MAILARK_BENCH_S3_BUCKET ?? server.bucket,
    prefix: `bench-${Date.now().toString(36)}`,
    endpoint: env.MAILARK_BENCH_S3_ENDPOINT ?? server.endpoint,
    region: env.MAILARK_BENCH_S3_REGION ?? 'us-east-1',
    credentials: {
      accessKeyId: env.MAILARK_BENCH_S3_ACCESS_KEY_ID ?? server.accessKeyId,
      secretAccessKey: env.MAILARK_BENCH_S3_SECRET_ACCESS_KEY ?? server.secretAccessKey,
    },
  });
  try {
    rows.push(
      ...(await measure(server ? 's3rver' : 's3', new RetryingStore(s3), {
        packs: 4,
        small: 500,
        ranged: 1000,
      })),
    );
  } finally {
    await s3.close();
    await server?.stop();
    if (server) rmSync(server.dir, { recursive: true, force: true });
  }
}
if (opt.json) console.log(JSON.stringify(rows));
else {
  for (const r of rows)
    console.log(
      `${r.store.padEnd(7)} ${r.op.padEnd(42)} ${String(r.n).padStart(5)} ${r.ms.toFixed(0).padStart(7)} ms  ${r.rate}`,
    );
}
