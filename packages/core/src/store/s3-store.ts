/**
 * S3Store: an ObjectStore over any S3-compatible endpoint (AWS, MinIO, Ceph RGW, s3rver …) with
 * @aws-sdk/client-s3. Objects live at `<prefix>/<key>` in one bucket.
 *
 * Rules it keeps:
 * - No overwrite. With proven conditional writes (`conditionalWrites`, set from the repository config
 *   after init's probe) put() sends `If-None-Match: *` and the server refuses an existing key
 *   atomically (412). Otherwise it HEADs first, then PUTs: two writers can both pass the HEAD, and the
 *   later PUT replaces the earlier one. That race is harmless for mailark: every key is a content hash
 *   (packs, index) or a fresh random id (snapshots, locks, keys), so both writers carry identical bytes.
 * - Ranges are always `bytes=a-b`: suffix ranges (`bytes=-N`) are answered wrongly by some servers.
 * - Checksums: off-AWS endpoints get `requestChecksumCalculation`/`responseChecksumValidation` =
 *   WHEN_REQUIRED (many servers store aws-chunked framing as data or reject the trailers), and a
 *   Content-MD5 instead, which every S3 server verifies.
 * - Retries: the SDK's standard strategy (exponential backoff with jitter) retries single requests on
 *   5xx, throttling and connection errors; what it does not cover (a body stream cut while reading) is
 *   mapped to a transient error for RetryingStore, which openStore wraps around this store.
 * - `location` is `s3://bucket/prefix`: credentials never appear in it or in any error.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ListObjectsV2CommandOutput, S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { MailarkError } from '../errors.js';
import {
  assertValidKey,
  type ByteRange,
  newCounters,
  type ObjectInfo,
  type ObjectSpool,
  type ObjectStore,
} from './object-store.js';
import type { StoreCapabilities } from './probe.js';
import { mapS3Error } from './s3-errors.js';
import { resolveS3Settings, type S3Settings, type S3SettingsInput } from './s3-settings.js';
import { TempFileSpool, UploadBuffer } from './temp-file-spool.js';

// The settings are part of S3Store's API (the export code resolves the same endpoint rules).
export * from './s3-settings.js';

export interface S3StoreOptions extends S3SettingsInput {
  /** Explicit credentials (tests); default: the SDK's standard chain (env, profiles, SSO, IMDS). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** The endpoint is known to refuse overwrites with If-None-Match: * (see probeCapabilities). */
  conditionalWrites?: boolean;
  /** Attempts per request inside the SDK (default 3). */
  maxAttempts?: number;
  /** TCP connect timeout (default 10 s). */
  connectionTimeoutMs?: number;
  /** A request whose socket stays idle this long fails (default 120 s). */
  socketTimeoutMs?: number;
  /** Environment to resolve defaults from (default process.env); injectable for tests. */
  env?: Record<string, string | undefined>;
  /** A custom HTTP transport (an agent with a proxy; a fake S3 in unit tests). Replaces the timeouts. */
  requestHandler?: S3ClientConfig['requestHandler'];
}

// The SDK costs ~170 ms CPU to load: it is loaded on the first request, so a command on a local
// repository never pays for it and an S3 one pays once.
type Sdk = typeof import('@aws-sdk/client-s3');
let sdkModule: Promise<Sdk> | undefined;
function loadSdk(): Promise<Sdk> {
  sdkModule ??= import('@aws-sdk/client-s3');
  return sdkModule;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

export class S3Store implements ObjectStore {
  readonly location: string;
  readonly settings: S3Settings;
  readonly counters = newCounters();
  private conditional: boolean;
  private readonly clientConfig: S3ClientConfig;
  private client: Promise<{ sdk: Sdk; client: S3Client }> | undefined;
  private bucketCheck: Promise<void> | undefined;
  private readonly upload = new UploadBuffer();

  constructor(opts: S3StoreOptions) {
    this.settings = resolveS3Settings(opts, opts.env ?? process.env);
    const s = this.settings;
    this.location = s.prefix === '' ? `s3://${s.bucket}` : `s3://${s.bucket}/${s.prefix}`;
    this.conditional = opts.conditionalWrites ?? false;
    const config: S3ClientConfig = {
      region: s.region,
      forcePathStyle: s.forcePathStyle,
      maxAttempts: opts.maxAttempts ?? 3,
      retryMode: 'standard',
      requestHandler: opts.requestHandler ?? {
        connectionTimeout: opts.connectionTimeoutMs ?? 10_000,
        socketTimeout: opts.socketTimeoutMs ?? 120_000,
      },
      // AWS answers a wrong-region request with a redirect the SDK can follow.
      followRegionRedirects: s.aws,
    };
    if (s.endpoint !== undefined) config.endpoint = s.endpoint;
    if (!s.aws) {
      config.requestChecksumCalculation = 'WHEN_REQUIRED';
      config.responseChecksumValidation = 'WHEN_REQUIRED';
    }
    if (opts.credentials !== undefined) config.credentials = opts.credentials;
    this.clientConfig = config;
  }

  /** The SDK and the one client of this store, created on first use. */
  private sdk(): Promise<{ sdk: Sdk; client: S3Client }> {
    this.client ??= loadSdk().then((sdk) => ({ sdk, client: new sdk.S3Client(this.clientConfig) }));
    return this.client;
  }

  /** Whether put() relies on If-None-Match: * (see the module header). */
  get conditionalWrites(): boolean {
    return this.conditional;
  }

  /** From the repository config: the endpoint was proven to refuse overwrites (see probe.ts). */
  applyCapabilities(caps: StoreCapabilities): void {
    this.conditional = caps.conditionalWrites;
  }

  private fullKey(key: string): string {
    return this.settings.prefix === '' ? key : `${this.settings.prefix}/${key}`;
  }

  private error(err: unknown, op: string, key?: string): MailarkError {
    return mapS3Error(err, {
      op,
      bucket: this.settings.bucket,
      location: this.location,
      ...(key === undefined ? {} : { key }),
      ...(this.settings.endpoint === undefined ? {} : { endpoint: this.settings.endpoint }),
    });
  }

  /** A pack spooled to a temp file and put() from there (see temp-file-spool.ts). */
  spool(_dir: string): ObjectSpool {
    return new TempFileSpool((key, bytes) => this.put(key, bytes), this.upload);
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    assertValidKey(key);
    if (!this.conditional && (await this.stat(key)) !== undefined) {
      throw new MailarkError('OBJECT_EXISTS', `object ${key} already exists in ${this.location}`);
    }
    try {
      await this.putObject(key, data, this.conditional);
    } catch (err) {
      const mapped = this.error(err, 'put', key);
      // The SDK retried after an ambiguous failure and then met its own earlier write: same bytes, success.
      const attempts = (err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
      if (mapped.code === 'OBJECT_EXISTS' && attempts > 1 && sameBytes(await this.get(key), data)) return;
      throw mapped;
    }
    this.counters.puts++;
    this.counters.bytesWritten += data.byteLength;
  }

  private async putObject(key: string, data: Uint8Array, ifNoneMatch: boolean): Promise<void> {
    const { sdk, client } = await this.sdk();
    await client.send(
      new sdk.PutObjectCommand({
        Bucket: this.settings.bucket,
        Key: this.fullKey(key),
        Body: data,
        ContentLength: data.byteLength,
        ContentType: 'application/octet-stream',
        // The SDK adds a CRC for AWS; elsewhere Content-MD5 lets the server reject damaged uploads.
        ...(this.settings.aws ? {} : { ContentMD5: createHash('md5').update(data).digest('base64') }),
        ...(ifNoneMatch ? { IfNoneMatch: '*' } : {}),
      }),
    );
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    assertValidKey(key);
    if (range !== undefined && (range.offset < 0 || range.length < 0)) {
      throw new MailarkError(
        'CORRUPT',
        `invalid range ${range.offset}+${range.length} for ${key} in ${this.location}`,
      );
    }
    if (range !== undefined && range.length === 0) return this.emptyRange(key, range);
    let out: Uint8Array;
    let contentLength: number | undefined;
    try {
      const { sdk, client } = await this.sdk();
      const res = await client.send(
        new sdk.GetObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.fullKey(key),
          // An explicit first-last range, never a suffix range (see the module header).
          ...(range === undefined
            ? {}
            : { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` }),
        }),
      );
      contentLength = res.ContentLength;
      out = res.Body === undefined ? new Uint8Array(0) : await res.Body.transformToByteArray();
    } catch (err) {
      throw this.error(err, 'get', key);
    }
    if (contentLength !== undefined && out.byteLength !== contentLength) {
      // The server announced more than arrived: cut in transit, worth a retry.
      throw new MailarkError('STORE_IO', `read of ${key} in ${this.location} was cut short in transit`, {
        hint: 'retry; if it persists, check the network path to the S3 endpoint',
        details: { op: 'get', key, transient: true, expected: contentLength, got: out.byteLength },
      });
    }
    if (range !== undefined && out.byteLength !== range.length) {
      // The object is shorter than the range: the server sent what exists (HTTP 206, short).
      throw new MailarkError(
        'CORRUPT',
        `range ${range.offset}+${range.length} is outside object ${key} (got ${out.byteLength} bytes) in ${this.location}`,
      );
    }
    this.counters.gets++;
    this.counters.bytesRead += out.byteLength;
    return out;
  }

  /** HTTP cannot express an empty range: check existence and bounds with a HEAD instead. */
  private async emptyRange(key: string, range: ByteRange): Promise<Uint8Array> {
    const info = await this.stat(key);
    if (info === undefined)
      throw new MailarkError('OBJECT_NOT_FOUND', `object ${key} not found in ${this.location}`);
    if (range.offset > info.size) {
      throw new MailarkError(
        'CORRUPT',
        `range ${range.offset}+0 is outside object ${key} (${info.size} bytes) in ${this.location}`,
      );
    }
    return new Uint8Array(0);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    this.counters.stats++;
    try {
      const { sdk, client } = await this.sdk();
      const res = await client.send(
        new sdk.HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.fullKey(key) }),
      );
      return { key, size: res.ContentLength ?? 0 };
    } catch (err) {
      const mapped = this.error(err, 'stat', key);
      if (mapped.code !== 'OBJECT_NOT_FOUND') throw mapped;
      // A HEAD 404 has no body to tell a missing key from a missing bucket: ask once.
      await this.verifyBucket();
      return undefined;
    }
  }

  /**
   * Fails with STORE_BUCKET_MISSING when the bucket does not exist. A one-key listing rather than
   * HeadBucket: its error has a body naming NoSuchBucket, and some servers (s3rver) answer HeadBucket
   * with a full listing. Asked once per store; concurrent callers share the answer.
   */
  private verifyBucket(): Promise<void> {
    this.bucketCheck ??= this.sdk()
      .then(({ sdk, client }) =>
        client.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.settings.bucket,
            Prefix: this.fullKey('probe/'),
            MaxKeys: 1,
          }),
        ),
      )
      .then(
        () => undefined,
        (err: unknown) => {
          this.bucketCheck = undefined; // a transient failure is asked again next time
          throw this.error(err, 'stat');
        },
      );
    return this.bucketCheck;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.counters.lists++;
    const base = this.settings.prefix === '' ? '' : `${this.settings.prefix}/`;
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        const { sdk, client } = await this.sdk();
        page = await client.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.settings.bucket,
            Prefix: base + prefix,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
      } catch (err) {
        throw this.error(err, 'list', prefix);
      }
      for (const obj of page.Contents ?? []) {
        if (obj.Key === undefined || !obj.Key.startsWith(base + prefix)) continue;
        yield { key: obj.Key.slice(base.length), size: obj.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    this.counters.deletes++;
    try {
      const { sdk, client } = await this.sdk();
      await client.send(
        new sdk.DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.fullKey(key) }),
      );
    } catch (err) {
      const mapped = this.error(err, 'delete', key);
      if (mapped.code !== 'OBJECT_NOT_FOUND') throw mapped; // idempotent
    }
  }

  async close(): Promise<void> {
    // A store that never sent a request has no client (and never loaded the SDK).
    if (this.client !== undefined) (await this.client).client.destroy();
  }

  /**
   * Does this endpoint refuse an overwrite with If-None-Match: * ? PUTs a random `probe/<id>` twice
   * with the header: a 412 on the second means yes; an accepted overwrite (s3rver) or a refusal of
   * the header itself (501/400 from older servers) means no. The probe object is deleted.
   */
  async probeCapabilities(): Promise<StoreCapabilities> {
    const key = `probe/${randomBytes(16).toString('hex')}`;
    const data = new TextEncoder().encode('mailark capability probe');
    try {
      try {
        await this.putObject(key, data, true);
      } catch (err) {
        const mapped = this.error(err, 'probe', key);
        if (mapped.details?.httpStatus === 501 || mapped.details?.httpStatus === 400)
          return { conditionalWrites: false };
        throw mapped;
      }
      try {
        await this.putObject(key, data, true);
        return { conditionalWrites: false };
      } catch (err) {
        const mapped = this.error(err, 'probe', key);
        if (mapped.code === 'OBJECT_EXISTS') return { conditionalWrites: true };
        if (mapped.details?.httpStatus === 501 || mapped.details?.httpStatus === 400)
          return { conditionalWrites: false };
        throw mapped;
      }
    } finally {
      await this.delete(key).catch(() => {});
    }
  }
}
