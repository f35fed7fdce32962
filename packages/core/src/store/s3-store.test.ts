/**
 * S3Store without a network: settings resolution, and its requests on a fake transport. The store
 * against a real S3 server: test/s3-store.test.ts.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { MailarkError } from '../errors.js';
import { applyCapabilities } from './probe.js';
import { RetryingStore } from './retrying-store.js';
import { isAwsEndpoint, parsePathStyle, resolveS3Settings } from './s3-settings.js';
import { S3Store, type S3StoreOptions } from './s3-store.js';

describe('S3 settings', () => {
  it('recognises AWS endpoints', () => {
    expect(isAwsEndpoint(undefined)).toBe(true);
    expect(isAwsEndpoint('https://s3.eu-west-1.amazonaws.com')).toBe(true);
    expect(isAwsEndpoint('https://minio.lan:9000')).toBe(false);
    expect(isAwsEndpoint('https://amazonaws.com.evil.example')).toBe(false);
    expect(isAwsEndpoint('not a url')).toBe(false);
  });

  it('parses MAILARK_S3_PATH_STYLE', () => {
    expect(parsePathStyle('1')).toBe(true);
    expect(parsePathStyle('true')).toBe(true);
    expect(parsePathStyle('0')).toBe(false);
    expect(parsePathStyle(undefined)).toBeUndefined();
    expect(parsePathStyle('')).toBeUndefined();
    expect(() => parsePathStyle('2')).toThrow(/MAILARK_S3_PATH_STYLE/);
  });

  it('prefers the endpoint option, then AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL', () => {
    const env = { AWS_ENDPOINT_URL_S3: 'http://s3.lan', AWS_ENDPOINT_URL: 'http://all.lan' };
    expect(resolveS3Settings({ bucket: 'b', endpoint: 'http://opt.lan' }, env).endpoint).toBe(
      'http://opt.lan',
    );
    expect(resolveS3Settings({ bucket: 'b' }, env).endpoint).toBe('http://s3.lan');
    expect(resolveS3Settings({ bucket: 'b' }, { AWS_ENDPOINT_URL: 'http://all.lan' }).endpoint).toBe(
      'http://all.lan',
    );
    expect(resolveS3Settings({ bucket: 'b' }, {}).endpoint).toBeUndefined();
  });

  it('refuses an endpoint that is not an http(s) URL before any request, naming it', () => {
    for (const endpoint of ['notaurl', 'minio.lan:9000', '127.0.0.1:9000', 'ftp://s3.lan']) {
      const err = (() => {
        try {
          resolveS3Settings({ bucket: 'b', endpoint }, {});
        } catch (e) {
          return e as MailarkError;
        }
      })();
      expect(err?.code, endpoint).toBe('USAGE');
      expect(err?.message).toContain(`"${endpoint}" is not an http(s) URL`);
      expect(err?.hint).toContain('https://s3.example.net');
    }
    expect(() => resolveS3Settings({ bucket: 'b' }, { AWS_ENDPOINT_URL_S3: 's3.lan' })).toThrow(/s3\.lan/);
    expect(resolveS3Settings({ bucket: 'b', endpoint: 'https://s3.lan:9000/' }, {}).endpoint).toBe(
      'https://s3.lan:9000/',
    );
  });

  it('uses path style for custom endpoints and virtual hosts for AWS, unless told otherwise', () => {
    expect(resolveS3Settings({ bucket: 'b', endpoint: 'http://minio.lan' }, {}).forcePathStyle).toBe(true);
    expect(resolveS3Settings({ bucket: 'b' }, {}).forcePathStyle).toBe(false);
    expect(resolveS3Settings({ bucket: 'b' }, { MAILARK_S3_PATH_STYLE: '1' }).forcePathStyle).toBe(true);
    expect(
      resolveS3Settings({ bucket: 'b', endpoint: 'http://m', forcePathStyle: false }, {}).forcePathStyle,
    ).toBe(false);
  });

  it('normalises the prefix and builds an s3:// location without credentials', async () => {
    const store = new S3Store({
      bucket: 'bkt',
      prefix: '/tenants/acme/',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI-secret' },
      env: {},
    });
    expect(store.settings.prefix).toBe('tenants/acme');
    expect(store.location).toBe('s3://bkt/tenants/acme');
    expect(JSON.stringify(store.settings)).not.toContain('wJalrXUtnFEMI');
    expect(new S3Store({ bucket: 'bkt', env: {} }).location).toBe('s3://bkt');
    await store.close();
  });

  it('takes the region from the option, then AWS_REGION, then AWS_DEFAULT_REGION, else us-east-1', () => {
    expect(resolveS3Settings({ bucket: 'b', region: 'r1' }, { AWS_REGION: 'r2' }).region).toBe('r1');
    expect(resolveS3Settings({ bucket: 'b' }, { AWS_REGION: 'r2', AWS_DEFAULT_REGION: 'r3' }).region).toBe(
      'r2',
    );
    expect(resolveS3Settings({ bucket: 'b' }, { AWS_DEFAULT_REGION: 'r3' }).region).toBe('r3');
    expect(resolveS3Settings({ bucket: 'b' }, {}).region).toBe('us-east-1');
  });
});

/**
 * A fake S3 behind the SDK's transport seam: objects in a Map, AWS semantics for If-None-Match: *,
 * every request recorded, and scripted answers to inject failures. Tests the request logic that
 * s3rver cannot show (it ignores conditional writes).
 */
interface FakeRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  query: Record<string, string | string[] | null>;
  body?: unknown;
}
class FakeS3 {
  readonly objects = new Map<string, Buffer>();
  readonly requests: Array<{ method: string; key: string; headers: Record<string, string> }> = [];
  /** Scripted answers, consumed in order before normal handling: [status, s3 code, apply the write first?]. */
  readonly script: Array<{ status: number; code: string; applyFirst?: boolean }> = [];

  async handle(req: FakeRequest) {
    const key = decodeURIComponent(req.path.replace(/^\/bkt\/?/, ''));
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), v]));
    this.requests.push({ method: req.method, key, headers });
    const scripted = this.script.shift();
    if (scripted !== undefined) {
      if (scripted.applyFirst && req.method === 'PUT')
        this.objects.set(key, Buffer.from(req.body as Uint8Array));
      return this.reply(scripted.status, {}, this.errorXml(scripted.code));
    }
    const obj = this.objects.get(key);
    switch (req.method) {
      case 'PUT':
        if (headers['if-none-match'] === '*' && obj !== undefined) {
          return this.reply(412, {}, this.errorXml('PreconditionFailed'));
        }
        this.objects.set(key, Buffer.from(req.body as Uint8Array));
        return this.reply(200, { etag: '"x"' }, '');
      case 'HEAD':
        return obj === undefined
          ? this.reply(404, {}, '')
          : this.reply(200, { 'content-length': String(obj.length) }, '');
      case 'GET': {
        if (req.query['list-type'] === '2') {
          // Only the one-key listing that tells a missing key from a missing bucket.
          const xml =
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bkt</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>';
          return this.reply(200, { 'content-type': 'application/xml' }, xml);
        }
        if (obj === undefined) return this.reply(404, {}, this.errorXml('NoSuchKey'));
        const m = /^bytes=(\d+)-(\d+)$/.exec(headers.range ?? '');
        const part = m === null ? obj : obj.subarray(Number(m[1]), Number(m[2]) + 1);
        return this.reply(m === null ? 200 : 206, { 'content-length': String(part.length) }, part);
      }
      case 'DELETE':
        this.objects.delete(key);
        return this.reply(204, {}, '');
      default:
        return this.reply(501, {}, this.errorXml('NotImplemented'));
    }
  }

  private errorXml(code: string): string {
    return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`;
  }

  private reply(statusCode: number, headers: Record<string, string>, body: string | Buffer) {
    return { response: { statusCode, headers, body: Readable.from([Buffer.from(body)]) } };
  }
}

function fakeStore(fake: FakeS3, extra: Partial<S3StoreOptions> = {}): S3Store {
  return new S3Store({
    bucket: 'bkt',
    endpoint: 'http://fake.test',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'fake' },
    env: {},
    maxAttempts: 3,
    requestHandler: fake as unknown as S3StoreOptions['requestHandler'],
    ...extra,
  });
}

describe('S3Store requests (fake transport)', () => {
  it('with proven conditional writes, PUTs with If-None-Match: * and no HEAD; 412 → OBJECT_EXISTS', async () => {
    const fake = new FakeS3();
    const store = fakeStore(fake, { conditionalWrites: true });
    await store.put('snapshots/a', new TextEncoder().encode('A'));
    const err = (await store
      .put('snapshots/a', new TextEncoder().encode('B'))
      .catch((e: unknown) => e)) as MailarkError;
    expect(err.code).toBe('OBJECT_EXISTS');
    expect(fake.requests.map((r) => `${r.method} ${r.key} ${r.headers['if-none-match'] ?? '-'}`)).toEqual([
      'PUT snapshots/a *',
      'PUT snapshots/a *',
    ]);
    expect(fake.objects.get('snapshots/a')?.toString()).toBe('A');
    // Off AWS: a Content-MD5 instead of the SDK's streaming checksums.
    expect(fake.requests[0]?.headers['content-md5']).toBe(createHash('md5').update('A').digest('base64'));
    expect(fake.requests[0]?.headers['x-amz-checksum-crc32']).toBeUndefined();
  });

  it('without them, HEADs first and refuses an existing key without a PUT', async () => {
    const fake = new FakeS3();
    const store = fakeStore(fake);
    await store.put('snapshots/a', new TextEncoder().encode('A'));
    expect(
      ((await store.put('snapshots/a', new Uint8Array([1])).catch((e: unknown) => e)) as MailarkError).code,
    ).toBe('OBJECT_EXISTS');
    // The first HEAD 404 is followed once by a one-key listing: is the bucket there at all?
    expect(
      fake.requests.map((r) => `${r.method} ${r.key || '(bucket)'} ${r.headers['if-none-match'] ?? '-'}`),
    ).toEqual(['HEAD snapshots/a -', 'GET (bucket) -', 'PUT snapshots/a -', 'HEAD snapshots/a -']);
  });

  it('switches to If-None-Match when the repository config says so, through decorators', async () => {
    const fake = new FakeS3();
    const s3 = fakeStore(fake);
    const store = new RetryingStore(s3);
    expect(s3.conditionalWrites).toBe(false);
    applyCapabilities(store, { conditionalWrites: true });
    expect(s3.conditionalWrites).toBe(true);
    await store.put('config', new Uint8Array([1]));
    expect(fake.requests.map((r) => `${r.method} ${r.headers['if-none-match'] ?? '-'}`)).toEqual(['PUT *']);
  });

  it('accepts a 412 that meets its own earlier write after an SDK retry (lost response)', async () => {
    const fake = new FakeS3();
    fake.script.push({ status: 500, code: 'InternalError', applyFirst: true });
    const store = fakeStore(fake, { conditionalWrites: true });
    await store.put('data/00/p', new TextEncoder().encode('pack'));
    expect(fake.requests.map((r) => r.method)).toEqual(['PUT', 'PUT', 'GET']);
  });

  it('retries 503 SlowDown inside the SDK, then succeeds', async () => {
    const fake = new FakeS3();
    fake.objects.set('config', Buffer.from('cfg'));
    fake.script.push({ status: 503, code: 'SlowDown' });
    const store = fakeStore(fake);
    expect(new TextDecoder().decode(await store.get('config'))).toBe('cfg');
    expect(fake.requests.length).toBe(2);
  });

  it('asks for explicit first-last ranges, never suffix ranges', async () => {
    const fake = new FakeS3();
    fake.objects.set('data/00/p', Buffer.from('0123456789'));
    const store = fakeStore(fake);
    expect(new TextDecoder().decode(await store.get('data/00/p', { offset: 7, length: 3 }))).toBe('789');
    expect(fake.requests[0]?.headers.range).toBe('bytes=7-9');
    // Past the end: the server sends what exists, the store calls it CORRUPT.
    expect(
      ((await store.get('data/00/p', { offset: 8, length: 5 }).catch((e: unknown) => e)) as MailarkError)
        .code,
    ).toBe('CORRUPT');
  });

  it('probes conditional writes: a 412 on the second PUT means yes, an overwrite means no', async () => {
    const aws = new FakeS3();
    expect(await fakeStore(aws).probeCapabilities()).toEqual({ conditionalWrites: true });
    expect(aws.objects.size).toBe(0);
    const sloppy = new FakeS3();
    sloppy.handle = async function (this: FakeS3, req: FakeRequest) {
      // s3rver: the header is ignored.
      return FakeS3.prototype.handle.call(this, { ...req, headers: { ...req.headers, 'if-none-match': '' } });
    };
    expect(await fakeStore(sloppy).probeCapabilities()).toEqual({ conditionalWrites: false });
    expect(sloppy.objects.size).toBe(0);
  });
});
