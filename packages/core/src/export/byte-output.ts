/**
 * Where an archive's bytes go: a local file (temporary name, fsync, rename), standard output, or an
 * S3 object (multipart upload). An archive sink writes into `writable` and then calls finish() or
 * abort(). Every output counts and hashes what it is given, so the export can report the archive's
 * size and SHA-256 without reading it back.
 *
 * S3: @aws-sdk/lib-storage `Upload`, with a part size computed from the expected size so that the
 * upload stays under S3's 10,000 parts (a 500 GB archive gets ~70 MiB parts) and at most ~128 MiB of
 * parts in memory; the client is set up like the repository's S3 store (path style for custom
 * endpoints, checksums WHEN_REQUIRED off AWS). On failure the multipart upload is aborted by mailark
 * itself, and the outcome is reported: some servers (s3rver) do not implement AbortMultipartUpload,
 * and then the orphaned parts are named with the command that removes them.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { WriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type { Upload } from '@aws-sdk/lib-storage';
import { errorText, MailarkError } from '../errors.js';
import { type Reporter, silentReporter } from '../progress.js';
import { mapS3Error } from '../store/s3-errors.js';
import { resolveS3Settings } from '../store/s3-store.js';

export interface ByteOutput {
  readonly location: string;
  /** Where the archive stream is piped (ended by the pipe). */
  readonly writable: Writable;
  /** After the writable finished: make the output final. */
  finish(): Promise<{ bytes: number; sha256: string }>;
  /** Discard; never throws. */
  abort(reason: unknown): Promise<void>;
}

/** Counts and hashes what passes, then hands it to `target`. */
class Tally extends Writable {
  bytes = 0;
  private readonly hash = createHash('sha256');
  constructor(private readonly target: (chunk: Buffer, done: (err?: Error | null) => void) => void) {
    super({ highWaterMark: 256 * 1024 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    this.target(chunk, done);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Writes into a stream, waiting for 'drain' when it is full (backpressure), without ending it. */
function forwardTo(
  stream: NodeJS.WritableStream | Writable,
): (chunk: Buffer, done: (err?: Error | null) => void) => void {
  return (chunk, done) => {
    if (stream.write(chunk)) done();
    else stream.once('drain', () => done());
  };
}

export class FileOutput implements ByteOutput {
  readonly location: string;
  readonly writable: Tally;
  private readonly temp: string;
  private readonly file: WriteStream;
  private fileError: Error | undefined;

  private constructor(path: string, temp: string, file: WriteStream) {
    this.location = path;
    this.temp = temp;
    this.file = file;
    file.on('error', (err) => {
      this.fileError = err;
    });
    this.writable = new Tally((chunk, done) => {
      if (this.fileError !== undefined) return done(fileError(this.location, this.fileError));
      if (file.write(chunk)) return done();
      const onDrain = () => {
        file.off('error', onError);
        done();
      };
      const onError = (err: Error) => {
        file.off('drain', onDrain);
        done(fileError(this.location, err));
      };
      file.once('drain', onDrain);
      file.once('error', onError);
    });
  }

  /** Creates `.<name>.partial-<random>` beside `path` (whose directory must exist). */
  static async open(path: string): Promise<FileOutput> {
    const temp = join(dirname(path), `.${basename(path)}.partial-${randomBytes(4).toString('hex')}`);
    try {
      const handle = await open(temp, 'wx', 0o600);
      // The stream owns the handle (and closes it): a bare fd would be closed by the handle's GC.
      return new FileOutput(path, temp, handle.createWriteStream({ highWaterMark: 1024 * 1024 }));
    } catch (err) {
      throw fileError(path, err);
    }
  }

  async finish(): Promise<{ bytes: number; sha256: string }> {
    await new Promise<void>((resolve, reject) => {
      if (this.fileError !== undefined) return reject(fileError(this.location, this.fileError));
      this.file.end(() => resolve());
      this.file.once('error', (err) => reject(fileError(this.location, err)));
    });
    try {
      // fsync before rename: after a crash the final name never points at missing data.
      const h = await open(this.temp, 'r+');
      await h.sync();
      await h.close();
      await rename(this.temp, this.location);
    } catch (err) {
      throw fileError(this.location, err);
    }
    return { bytes: this.writable.bytes, sha256: this.writable.digest() };
  }

  async abort(_reason?: unknown): Promise<void> {
    this.file.destroy();
    await rm(this.temp, { force: true }).catch(() => {});
  }
}

export function fileError(path: string, err: unknown): MailarkError {
  if (err instanceof MailarkError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const hint =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? 'the disk is full: free space or write the export elsewhere (--out), e.g. to S3'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'choose an --out location this user may write to'
        : code === 'ENOENT' || code === 'ENOTDIR'
          ? 'the directory that should hold the export does not exist: create it first'
          : 'check the --out location';
  return new MailarkError('STORE_IO', `cannot write the export to ${path}: ${errorText(err)}`, {
    cause: err,
    hint,
  });
}

export class StdoutOutput implements ByteOutput {
  readonly location = 'stdout';
  readonly writable: Tally;
  constructor(stream: NodeJS.WritableStream) {
    this.writable = new Tally(forwardTo(stream));
  }
  async finish(): Promise<{ bytes: number; sha256: string }> {
    return { bytes: this.writable.bytes, sha256: this.writable.digest() };
  }
  async abort(_reason?: unknown): Promise<void> {}
}

export interface S3OutputOptions {
  bucket: string;
  key: string;
  /** Expected archive size in bytes (an upper bound is fine): sets the part size. */
  expectedBytes?: number;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  env?: Record<string, string | undefined>;
  /** A ready client (tests add failure-injecting middleware to one). */
  client?: S3Client;
  reporter?: Reporter;
}

const MIB = 1024 * 1024;
const MAX_PARTS = 10_000;

// The AWS SDK costs ~200 ms of CPU to load: only an export to S3 loads it.
interface S3Sdk {
  s3: typeof import('@aws-sdk/client-s3');
  storage: typeof import('@aws-sdk/lib-storage');
}
let s3Sdk: Promise<S3Sdk> | undefined;
function loadS3Sdk(): Promise<S3Sdk> {
  s3Sdk ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(
    ([s3, storage]) => ({ s3, storage }),
  );
  return s3Sdk;
}

/**
 * Part size and upload concurrency for an archive of about `expectedBytes`: parts of at least 8 MiB,
 * large enough that the archive needs at most 9,000 parts (10% margin under S3's 10,000), whole MiB;
 * 64 MiB when the size is unknown (up to ~600 GiB). At most ~128 MiB of parts are held at once.
 */
export function planMultipart(expectedBytes: number | undefined): { partSize: number; queueSize: number } {
  const wanted = expectedBytes === undefined ? 64 * MIB : Math.ceil(expectedBytes / (MAX_PARTS * 0.9));
  const partSize = Math.min(5 * 1024 * MIB, Math.max(8 * MIB, Math.ceil(wanted / MIB) * MIB));
  const queueSize = Math.max(1, Math.min(4, Math.floor((128 * MIB) / partSize)));
  return { partSize, queueSize };
}

export class S3Output implements ByteOutput {
  readonly location: string;
  readonly writable: Tally;
  private readonly body = new PassThrough({ highWaterMark: MIB });
  private readonly upload: Upload;
  private readonly done: Promise<unknown>;
  private readonly client: S3Client;
  private readonly reporter: Reporter;
  private failure: MailarkError | undefined;

  private constructor(
    private readonly opts: S3OutputOptions & { client: S3Client },
    private readonly ownsClient: boolean,
    private readonly sdk: S3Sdk,
  ) {
    this.location = `s3://${opts.bucket}/${opts.key}`;
    this.client = opts.client;
    this.reporter = opts.reporter ?? silentReporter;
    const { partSize, queueSize } = planMultipart(opts.expectedBytes);
    // leavePartsOnError: mailark aborts the upload itself (abort()), so it can report the outcome.
    this.upload = new sdk.storage.Upload({
      client: this.client,
      params: {
        Bucket: opts.bucket,
        Key: opts.key,
        Body: this.body,
        ContentType: 'application/octet-stream',
      },
      partSize,
      queueSize,
      leavePartsOnError: true,
    });
    this.done = this.upload.done();
    this.done.catch((err) => {
      this.failure = this.mapError(err);
      // Unblock the archive writer: its next write fails with the upload's error.
      this.body.destroy(this.failure);
    });
    this.writable = new Tally((chunk, cb) => {
      if (this.failure !== undefined) return cb(this.failure);
      forwardTo(this.body)(chunk, cb);
    });
    this.writable.on('finish', () => this.body.end());
  }

  static async open(opts: S3OutputOptions): Promise<S3Output> {
    const sdk = await loadS3Sdk();
    return new S3Output(
      { ...opts, client: opts.client ?? s3Client(opts, sdk) },
      opts.client === undefined,
      sdk,
    );
  }

  async finish(): Promise<{ bytes: number; sha256: string }> {
    try {
      await this.done;
    } catch (err) {
      throw this.mapError(err); // the export calls abort() next, which still needs the client
    }
    if (this.ownsClient) this.client.destroy();
    return { bytes: this.writable.bytes, sha256: this.writable.digest() };
  }

  async abort(): Promise<void> {
    await this.upload.abort().catch(() => {});
    this.body.destroy();
    await this.done.catch(() => {});
    // lib-storage keeps the id of the multipart upload it created (not in its typings).
    const uploadId = (this.upload as unknown as { uploadId?: string }).uploadId;
    if (uploadId === undefined) {
      if (this.ownsClient) this.client.destroy();
      return; // nothing was created on the server
    }
    const { bucket, key } = this.opts;
    try {
      await this.client.send(
        new this.sdk.s3.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }),
      );
      this.reporter.log('info', `aborted the multipart upload of ${this.location}`, { uploadId });
    } catch (err) {
      this.reporter.log(
        'warn',
        `could not abort the multipart upload of ${this.location} (${errorText(err)}): its parts stay on the server until removed, e.g. "aws s3api abort-multipart-upload --bucket ${bucket} --key ${key} --upload-id ${uploadId}"`,
        { uploadId },
      );
    } finally {
      if (this.ownsClient) this.client.destroy();
    }
  }

  private mapError(err: unknown): MailarkError {
    if (err instanceof MailarkError) return err;
    return mapS3Error(err, {
      op: 'put',
      key: this.opts.key,
      bucket: this.opts.bucket,
      location: this.location,
      ...(this.opts.endpoint === undefined ? {} : { endpoint: this.opts.endpoint }),
    });
  }
}

function s3Client(opts: S3OutputOptions, sdk: S3Sdk): S3Client {
  const s = resolveS3Settings(
    {
      bucket: opts.bucket,
      ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }),
      ...(opts.region === undefined ? {} : { region: opts.region }),
      ...(opts.forcePathStyle === undefined ? {} : { forcePathStyle: opts.forcePathStyle }),
    },
    opts.env ?? process.env,
  );
  const config: S3ClientConfig = { region: s.region, forcePathStyle: s.forcePathStyle, maxAttempts: 3 };
  if (s.endpoint !== undefined) config.endpoint = s.endpoint;
  if (!s.aws) {
    // As the repository's S3 store: default checksums make some servers store aws-chunked framing.
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  if (opts.credentials !== undefined) config.credentials = opts.credentials;
  return new sdk.s3.S3Client(config);
}
