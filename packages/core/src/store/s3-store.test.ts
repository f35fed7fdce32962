/** S3Store's pure parts (settings, endpoint classification); the store itself: test/s3-store.test.ts. */
import { describe, expect, it } from 'vitest';
import { isAwsEndpoint, parsePathStyle, resolveS3Settings, S3Store } from './s3-store.js';

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
