// Types for s3-server.mjs (plain ESM JavaScript so that scripts run without a build).
export interface S3ServerOptions {
  /** Storage directory; default: a new temp dir. */
  dir?: string;
  /** Listen port; default: a free one. */
  port?: number;
  /** The one bucket created; default 'mailark-test'. */
  bucket?: string;
  /** Default true unless MAILARK_S3_VERBOSE is set. */
  silent?: boolean;
}

export interface S3Server {
  /** http://127.0.0.1:<port>; clients must use path-style addressing. */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly bucket: string;
  readonly port: number;
  readonly dir: string;
  /** Closes the server; removes `dir` if it was not given (MAILARK_TEST_KEEP=1 keeps it). */
  stop(): Promise<void>;
}

export function startS3(opts?: S3ServerOptions): Promise<S3Server>;
