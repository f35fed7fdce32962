/**
 * S3Store against the harness's real S3 endpoint (s3rver by default, or MAILARK_TEST_S3_*): the
 * ObjectStore contract, capability probing, and the failures a user meets (endpoint down, wrong bucket).
 */
import { describe, expect, inject, it, vi } from 'vitest';
import { MailarkError } from '../packages/core/src/errors.js';
import { openStore } from '../packages/core/src/store/open-store.js';
import { probeCapabilities } from '../packages/core/src/store/probe.js';
import { RetryingStore } from '../packages/core/src/store/retrying-store.js';
import { S3Store, type S3StoreOptions } from '../packages/core/src/store/s3-store.js';
import { runStoreContract } from '../packages/core/src/store/store-contract.js';
import { freshPrefix } from './harness/fixtures.js';

function options(extra: Partial<S3StoreOptions> = {}): S3StoreOptions {
  const s3 = inject('s3');
  return {
    bucket: s3.bucket,
    prefix: freshPrefix(),
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    env: {},
    ...extra,
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof MailarkError ? err.code : `non-MailarkError ${String(err)}`;
  }
}

// Check-then-put: what every endpoint supports, and what s3rver needs.
runStoreContract('S3Store (HEAD, then PUT)', async () => ({ store: new S3Store(options()) }), {
  atomicNoOverwrite: false,
  sortedList: inject('s3').kind !== 's3rver',
  timeoutMs: 60_000,
});

runStoreContract(
  'RetryingStore(S3Store)',
  async () => ({ store: new RetryingStore(new S3Store(options()), { baseDelayMs: 10 }) }),
  { atomicNoOverwrite: false, sortedList: inject('s3').kind !== 's3rver', timeoutMs: 60_000 },
);

describe('S3Store on the test endpoint', () => {
  it('probes conditional writes as the endpoint really behaves, and cleans up', async () => {
    const store = new S3Store(options());
    const caps = await probeCapabilities(store);
    // s3rver ignores If-None-Match and overwrites; a real endpoint (MinIO, AWS) refuses with 412.
    expect(caps.conditionalWrites).toBe(inject('s3').kind !== 's3rver');
    const left: string[] = [];
    for await (const o of store.list('')) left.push(o.key);
    expect(left).toEqual([]);
    await store.close();
  });

  it('keeps objects of two prefixes apart (one tenant never sees another)', async () => {
    const a = new S3Store(options({ prefix: 'tenant-a' + freshPrefix() }));
    const b = new S3Store(options({ prefix: `${a.settings.prefix}x` }));
    await a.put('config', new TextEncoder().encode('a'));
    await b.put('config', new TextEncoder().encode('b'));
    const keysOfA: string[] = [];
    for await (const o of a.list('')) keysOfA.push(o.key);
    expect(keysOfA).toEqual(['config']);
    expect(new TextDecoder().decode(await b.get('config'))).toBe('b');
    expect(a.location).toBe(`s3://${inject('s3').bucket}/${a.settings.prefix}`);
    expect(a.location).not.toContain(inject('s3').secretAccessKey);
    await Promise.all([a.close(), b.close()]);
  });

  it('reports a missing bucket as STORE_BUCKET_MISSING on every operation', async () => {
    const store = new S3Store(options({ bucket: `mailark-missing-${Date.now()}` }));
    const err = await store.get('config').catch((e: unknown) => e);
    expect((err as MailarkError).code).toBe('STORE_BUCKET_MISSING');
    expect((err as MailarkError).hint).toContain('create the bucket');
    expect(await codeOf(store.stat('config'))).toBe('STORE_BUCKET_MISSING');
    expect(await codeOf(store.put('config', new Uint8Array([1])))).toBe('STORE_BUCKET_MISSING');
    const listing = (async () => {
      for await (const _ of store.list('')) break;
    })();
    expect(await codeOf(listing)).toBe('STORE_BUCKET_MISSING');
    await store.close();
  });

  it('reports an endpoint nobody listens on as STORE_UNREACHABLE, fast', async () => {
    const s3 = inject('s3');
    // Credentials present, so what fails is the connection (without them the SDK stops earlier, STORE_AUTH).
    vi.stubEnv('AWS_ACCESS_KEY_ID', s3.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', s3.secretAccessKey);
    const started = Date.now();
    const store = await openStore(`s3://${inject('s3').bucket}/x`, {
      s3Endpoint: 'http://127.0.0.1:1',
      s3Region: 'us-east-1',
      retry: { maxAttempts: 2, baseDelayMs: 5 },
      s3MaxAttempts: 1,
    });
    const err = await store.get('config').catch((e: unknown) => e);
    expect((err as MailarkError).code).toBe('STORE_UNREACHABLE');
    expect((err as MailarkError).hint).toContain('--s3-endpoint');
    expect(Date.now() - started).toBeLessThan(10_000);
    await store.close();
    vi.unstubAllEnvs();
  });

  it('opens s3:// locations through openStore with the endpoint from the environment', async () => {
    const s3 = inject('s3');
    const prefix = freshPrefix().replace(/\/$/, '');
    // The SDK's default credential chain reads the real environment, lazily at the first request.
    vi.stubEnv('AWS_ENDPOINT_URL_S3', s3.endpoint);
    vi.stubEnv('AWS_ACCESS_KEY_ID', s3.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', s3.secretAccessKey);
    vi.stubEnv('AWS_REGION', s3.region);
    vi.stubEnv('MAILARK_S3_PATH_STYLE', '');
    const store = await openStore(`s3://${s3.bucket}/${prefix}`);
    try {
      expect(store.location).toBe(`s3://${s3.bucket}/${prefix}`);
      await store.put('snapshots/one', new Uint8Array([1, 2, 3]));
      expect([...(await store.get('snapshots/one', { offset: 1, length: 2 }))]).toEqual([2, 3]);
    } finally {
      vi.unstubAllEnvs();
    }
    await store.close();
  });
});
