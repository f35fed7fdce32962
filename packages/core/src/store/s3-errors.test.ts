import { describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { mapS3Error, type S3ErrorContext } from './s3-errors.js';

const ctx: S3ErrorContext = {
  op: 'get',
  key: 'config',
  bucket: 'acme-backups',
  location: 's3://acme-backups/acme',
  endpoint: 'http://minio.internal:9000',
};

/** An error shaped like the SDK's service exceptions. */
function s3Error(name: string, status: number | undefined, message = name): Error {
  const err = new Error(message) as Error & { $metadata: { httpStatusCode?: number }; $fault: string };
  err.name = name;
  err.$metadata = status === undefined ? {} : { httpStatusCode: status };
  err.$fault = status !== undefined && status >= 500 ? 'server' : 'client';
  return err;
}

function nodeError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
}

describe('mapS3Error', () => {
  it('maps NoSuchBucket to STORE_BUCKET_MISSING with a hint naming the bucket', () => {
    const e = mapS3Error(s3Error('NoSuchBucket', 404), ctx);
    expect(e.code).toBe('STORE_BUCKET_MISSING');
    expect(e.hint).toContain('acme-backups');
    expect(e.details?.transient).toBe(false);
  });

  it.each([
    ['InvalidAccessKeyId', 403],
    ['SignatureDoesNotMatch', 403],
    ['AccessDenied', 403],
    ['Forbidden', 403],
    ['ExpiredToken', 400],
    ['', 403],
  ])('maps %s (HTTP %s) to STORE_AUTH, naming the env vars', (name, status) => {
    const e = mapS3Error(s3Error(name, status), ctx);
    expect(e.code).toBe('STORE_AUTH');
    expect(e.hint).toContain('AWS_ACCESS_KEY_ID');
    expect(e.hint).toContain('AWS_SECRET_ACCESS_KEY');
  });

  it('maps missing credentials to STORE_AUTH that says how to provide them', () => {
    const e = mapS3Error(s3Error('CredentialsProviderError', undefined, 'Could not load credentials'), ctx);
    expect(e.code).toBe('STORE_AUTH');
    expect(e.message).toContain('no S3 credentials');
    expect(e.hint).toContain('AWS_PROFILE');
  });

  it.each(['ECONNREFUSED', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'EAI_AGAIN'])(
    'maps %s to transient STORE_UNREACHABLE with an --s3-endpoint hint',
    (code) => {
      const e = mapS3Error(nodeError(code), ctx);
      expect(e.code).toBe('STORE_UNREACHABLE');
      expect(e.hint).toContain('--s3-endpoint');
      expect(e.hint).toContain('http://minio.internal:9000');
      expect(e.details?.transient).toBe(true);
    },
  );

  it('treats a host that does not resolve as unreachable but not worth retrying', () => {
    const e = mapS3Error(nodeError('ENOTFOUND'), ctx);
    expect(e.code).toBe('STORE_UNREACHABLE');
    expect(e.details?.transient).toBe(false);
  });

  it('finds the network code inside an AggregateError (happy-eyeballs connects)', () => {
    const agg = new AggregateError([nodeError('ECONNREFUSED'), nodeError('ECONNREFUSED')], 'connect failed');
    expect(mapS3Error(agg, ctx).code).toBe('STORE_UNREACHABLE');
  });

  it('maps SDK timeouts and HTTP 408 to STORE_UNREACHABLE', () => {
    expect(mapS3Error(s3Error('TimeoutError', undefined), ctx).code).toBe('STORE_UNREACHABLE');
    expect(mapS3Error(s3Error('RequestTimeout', 408), ctx).code).toBe('STORE_UNREACHABLE');
  });

  it('hints at the region, not the endpoint, on AWS (no custom endpoint)', () => {
    const { endpoint: _drop, ...aws } = ctx;
    expect(mapS3Error(nodeError('ECONNREFUSED'), aws).hint).toContain('--s3-region');
  });

  it('maps throttling and 5xx to transient STORE_IO, other 4xx to permanent STORE_IO', () => {
    for (const [name, status] of [
      ['SlowDown', 503],
      ['ServiceUnavailable', 503],
      ['InternalError', 500],
      ['TooManyRequests', 429],
      ['ConditionalRequestConflict', 409],
    ] as const) {
      const e = mapS3Error(s3Error(name, status), ctx);
      expect(e.code, name).toBe('STORE_IO');
      expect(e.details?.transient, name).toBe(true);
    }
    const bad = mapS3Error(s3Error('InvalidArgument', 400), ctx);
    expect(bad.code).toBe('STORE_IO');
    expect(bad.details?.transient).toBe(false);
  });

  it('maps object-level answers to their store codes', () => {
    expect(mapS3Error(s3Error('NoSuchKey', 404), ctx).code).toBe('OBJECT_NOT_FOUND');
    expect(mapS3Error(s3Error('NotFound', 404), ctx).code).toBe('OBJECT_NOT_FOUND');
    expect(mapS3Error(s3Error('PreconditionFailed', 412), ctx).code).toBe('OBJECT_EXISTS');
    expect(mapS3Error(s3Error('InvalidRange', 416), ctx).code).toBe('CORRUPT');
  });

  it('names the region fix on a wrong-region redirect', () => {
    const e = mapS3Error(s3Error('PermanentRedirect', 301), ctx);
    expect(e.code).toBe('STORE_IO');
    expect(e.hint).toContain('--s3-region');
  });

  it('retries an error with no HTTP status (a body stream cut mid-read)', () => {
    const e = mapS3Error(new Error('aborted'), ctx);
    expect(e.code).toBe('STORE_IO');
    expect(e.details?.transient).toBe(true);
  });

  it('passes MailarkErrors through, keeps the SDK error as cause and names the location', () => {
    const original = new MailarkError('CORRUPT', 'x');
    expect(mapS3Error(original, ctx)).toBe(original);
    const sdk = s3Error('SignatureDoesNotMatch', 403);
    const e = mapS3Error(sdk, ctx);
    expect(e.cause).toBe(sdk);
    expect(e.message).toContain('get config in s3://acme-backups/acme');
  });
});
