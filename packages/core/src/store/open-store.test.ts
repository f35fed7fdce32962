import { describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { LocalDirStore } from './local-dir-store.js';
import { openStore, parseStoreLocation } from './open-store.js';
import { RetryingStore } from './retrying-store.js';
import { S3Store } from './s3-store.js';

function usageError(location: string): MailarkError {
  try {
    parseStoreLocation(location, '/home/op');
  } catch (err) {
    expect(err).toBeInstanceOf(MailarkError);
    return err as MailarkError;
  }
  throw new Error(`${location} was accepted`);
}

describe('parseStoreLocation', () => {
  it('takes absolute, relative and file: paths as local directories', () => {
    expect(parseStoreLocation('/srv/mailark/acme', '/home/op')).toEqual({
      kind: 'local',
      path: '/srv/mailark/acme',
    });
    expect(parseStoreLocation('repos/acme', '/home/op')).toEqual({
      kind: 'local',
      path: '/home/op/repos/acme',
    });
    expect(parseStoreLocation('./acme/', '/home/op')).toEqual({ kind: 'local', path: '/home/op/acme' });
    expect(parseStoreLocation('file:///srv/mail%20ark', '/home/op')).toEqual({
      kind: 'local',
      path: '/srv/mail ark',
    });
    expect(parseStoreLocation('file:acme', '/home/op')).toEqual({ kind: 'local', path: '/home/op/acme' });
  });

  it('takes s3://bucket/prefix and s3:bucket/prefix', () => {
    expect(parseStoreLocation('s3://acme-backups/tenants/acme/')).toEqual({
      kind: 's3',
      bucket: 'acme-backups',
      prefix: 'tenants/acme',
    });
    expect(parseStoreLocation('s3:acme-backups')).toEqual({ kind: 's3', bucket: 'acme-backups', prefix: '' });
    expect(parseStoreLocation('s3:acme-backups/x')).toEqual({
      kind: 's3',
      bucket: 'acme-backups',
      prefix: 'x',
    });
  });

  it('takes restic forms with a host: explicit URL, host:port, AWS hosts', () => {
    expect(parseStoreLocation('s3:http://127.0.0.1:9000/bkt/acme')).toEqual({
      kind: 's3',
      endpoint: 'http://127.0.0.1:9000',
      bucket: 'bkt',
      prefix: 'acme',
    });
    expect(parseStoreLocation('s3:minio.lan:9000/bkt')).toEqual({
      kind: 's3',
      endpoint: 'https://minio.lan:9000',
      bucket: 'bkt',
      prefix: '',
    });
    expect(parseStoreLocation('s3:s3.amazonaws.com/bkt/acme')).toEqual({
      kind: 's3',
      bucket: 'bkt',
      prefix: 'acme',
    });
    expect(parseStoreLocation('s3:s3.eu-west-3.amazonaws.com/bkt/acme')).toEqual({
      kind: 's3',
      bucket: 'bkt',
      prefix: 'acme',
      region: 'eu-west-3',
    });
  });

  it('refuses unknown schemes with the accepted forms as hint', () => {
    const e = usageError('ftp://host/repo');
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain("unknown repository location scheme 'ftp:'");
    expect(e.hint).toBe('use a directory path, file:///path or s3://bucket/prefix');
    expect(usageError('sftp:user@host:/srv').message).toContain("'sftp:'");
  });

  it('refuses bad bucket names, dot segments, empty locations and a URL without bucket', () => {
    expect(usageError('s3://AB/x').message).toContain('invalid S3 bucket name');
    expect(usageError('s3://').message).toContain('invalid S3 bucket name');
    expect(usageError('s3://bucket/../other').message).toContain('invalid S3 key prefix');
    expect(usageError('  ').message).toContain('empty');
    expect(usageError('s3:https://minio.lan:9000').message).toContain('missing bucket');
    expect(usageError('file://remote-host/share').code).toBe('USAGE');
  });
});

describe('openStore', () => {
  it('opens a LocalDirStore for paths, resolved against cwd', async () => {
    const store = await openStore('repo', { cwd: '/tmp/mailark-x' });
    expect(store).toBeInstanceOf(LocalDirStore);
    expect(store.location).toBe('/tmp/mailark-x/repo');
  });

  it('opens an S3Store inside a RetryingStore, with endpoint, region and path style resolved', async () => {
    const store = await openStore('s3://bkt/acme', { s3Endpoint: 'http://127.0.0.1:9000', env: {} });
    expect(store).toBeInstanceOf(RetryingStore);
    const s3 = (store as RetryingStore).inner as S3Store;
    expect(s3).toBeInstanceOf(S3Store);
    expect(s3.location).toBe('s3://bkt/acme');
    expect(s3.settings).toEqual({
      bucket: 'bkt',
      prefix: 'acme',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      aws: false,
    });
    expect(s3.conditionalWrites).toBe(false);
    await store.close();
  });

  it('lets options beat the location, and the environment fill the gaps', async () => {
    const env = {
      AWS_ENDPOINT_URL: 'https://objects.example',
      AWS_REGION: 'eu-central-1',
      MAILARK_S3_PATH_STYLE: '0',
    };
    const fromEnv = ((await openStore('s3:bkt', { env })) as RetryingStore).inner as S3Store;
    expect(fromEnv.settings).toMatchObject({ endpoint: 'https://objects.example', region: 'eu-central-1' });
    expect(fromEnv.settings.forcePathStyle).toBe(false);
    const explicit = (
      (await openStore('s3:http://a.lan:9000/bkt', {
        env,
        s3Endpoint: 'http://b.lan:9000',
        s3Region: 'us-west-2',
        s3PathStyle: true,
        conditionalWrites: true,
      })) as RetryingStore
    ).inner as S3Store;
    expect(explicit.settings).toMatchObject({
      endpoint: 'http://b.lan:9000',
      region: 'us-west-2',
      forcePathStyle: true,
    });
    expect(explicit.conditionalWrites).toBe(true);
    const aws = ((await openStore('s3:s3.eu-west-3.amazonaws.com/bkt', { env: {} })) as RetryingStore)
      .inner as S3Store;
    expect(aws.settings).toMatchObject({
      endpoint: undefined,
      region: 'eu-west-3',
      forcePathStyle: false,
      aws: true,
    });
    await Promise.all([fromEnv.close(), explicit.close(), aws.close()]);
  });

  it('refuses a bad MAILARK_S3_PATH_STYLE as a CONFIG error', async () => {
    const err = await openStore('s3://bkt', { env: { MAILARK_S3_PATH_STYLE: 'maybe' } }).catch(
      (e: unknown) => e,
    );
    expect((err as MailarkError).code).toBe('CONFIG');
  });
});
