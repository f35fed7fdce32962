/**
 * S3 failures as MailarkErrors, in one pure function (unit-tested without a network).
 *
 * The rule it keeps: the code says what the user must fix, the hint says how, and nothing names a
 * secret. Errors come in three shapes: S3 service errors (`name` = the S3 error code, e.g. NoSuchBucket,
 * with `$metadata.httpStatusCode`; HEAD responses have no body, so only `NotFound`/`Forbidden` and the
 * status), Node network errors (`code` = ECONNREFUSED, ENOTFOUND …, sometimes inside an AggregateError
 * from happy-eyeballs connects), and SDK client errors (TimeoutError, CredentialsProviderError).
 * Transient conditions carry `details.transient = true` so the retrying store retries them; refusals
 * that a retry cannot fix carry `false`.
 */
import { MailarkError } from '../errors.js';

export interface S3ErrorContext {
  /** put, get, stat, list, delete, probe. */
  op: string;
  /** The object key as the repository names it (without the store's prefix). */
  key?: string;
  bucket: string;
  /** `s3://bucket/prefix`, for messages. */
  location: string;
  /** The custom endpoint, if any (for hints); never contains credentials. */
  endpoint?: string;
}

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  message?: unknown;
  errors?: unknown;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

const AUTH_NAMES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'Forbidden',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
]);
/** Node network errors that mean "never reached a working server". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const THROTTLE_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequests',
  'RequestLimitExceeded',
]);

/** The Node error code of `err` or of the first error inside an AggregateError. */
function networkCode(err: ErrorLike): string | undefined {
  if (typeof err.code === 'string') return err.code;
  if (Array.isArray(err.errors)) {
    for (const inner of err.errors as ErrorLike[]) if (typeof inner?.code === 'string') return inner.code;
  }
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Maps anything an S3 call threw to a MailarkError; MailarkErrors pass through unchanged. */
export function mapS3Error(err: unknown, ctx: S3ErrorContext): MailarkError {
  if (err instanceof MailarkError) return err;
  const e = (err ?? {}) as ErrorLike;
  const name = str(e.Code) ?? str(e.name) ?? '';
  const status = e.$metadata?.httpStatusCode;
  const net = networkCode(e);
  const what =
    ctx.key === undefined ? `${ctx.op} in ${ctx.location}` : `${ctx.op} ${ctx.key} in ${ctx.location}`;
  const reason = str(e.message) ?? name ?? net ?? 'unknown error';
  const make = (code: MailarkError['code'], message: string, hint: string | undefined, transient: boolean) =>
    new MailarkError(code, message, {
      cause: err,
      ...(hint === undefined ? {} : { hint }),
      details: { op: ctx.op, key: ctx.key, s3Error: name || net, httpStatus: status, transient },
    });
  const endpointHint =
    ctx.endpoint === undefined
      ? 'check the network and the bucket region (--s3-region or AWS_REGION)'
      : `check --s3-endpoint (or AWS_ENDPOINT_URL_S3): is ${ctx.endpoint} right and the server up?`;

  if (name === 'NoSuchBucket') {
    return make(
      'STORE_BUCKET_MISSING',
      `bucket "${ctx.bucket}" does not exist (${what})`,
      `create the bucket "${ctx.bucket}" first, or fix the bucket name in the repository location`,
      false,
    );
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name === '')) {
    return make(
      'OBJECT_NOT_FOUND',
      `object ${ctx.key ?? '?'} not found in ${ctx.location}`,
      undefined,
      false,
    );
  }
  if (name === 'PreconditionFailed' || status === 412) {
    return make(
      'OBJECT_EXISTS',
      `object ${ctx.key ?? '?'} already exists in ${ctx.location}`,
      undefined,
      false,
    );
  }
  if (name === 'InvalidRange' || status === 416) {
    return make(
      'CORRUPT',
      `requested range is outside object ${ctx.key ?? '?'} in ${ctx.location}`,
      undefined,
      false,
    );
  }
  if (AUTH_NAMES.has(name) || status === 401 || status === 403) {
    const missing = name === 'CredentialsProviderError';
    return make(
      'STORE_AUTH',
      missing
        ? `no S3 credentials found (${what})`
        : `S3 refused the credentials or the permission: ${name || `HTTP ${status}`} (${what})`,
      missing
        ? 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile in ~/.aws/credentials'
        : `check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that they may read and write bucket "${ctx.bucket}"`,
      false,
    );
  }
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
    return make(
      'STORE_IO',
      `bucket "${ctx.bucket}" is in another region (${what})`,
      'set the bucket region with --s3-region or AWS_REGION',
      false,
    );
  }
  if (net !== undefined && UNREACHABLE_CODES.has(net)) {
    // A name that does not resolve is a typo more often than an outage: do not hammer it.
    return make(
      'STORE_UNREACHABLE',
      `S3 endpoint unreachable: ${net} (${what})`,
      endpointHint,
      net !== 'ENOTFOUND',
    );
  }
  if (TIMEOUT_NAMES.has(name) || status === 408) {
    return make('STORE_UNREACHABLE', `S3 request timed out (${what})`, endpointHint, true);
  }
  if (name === 'ConditionalRequestConflict') {
    // AWS: another conditional write of this key is in flight; a retry meets its outcome (412 or ours).
    return make('STORE_IO', `concurrent conditional write of ${ctx.key ?? '?'} (${what})`, 'retry', true);
  }
  if (THROTTLE_NAMES.has(name) || status === 429 || status === 503) {
    return make(
      'STORE_IO',
      `S3 is throttling requests: ${name || `HTTP ${status}`} (${what})`,
      'retry later, or lower the parallelism',
      true,
    );
  }
  if (status !== undefined && status >= 500) {
    return make(
      'STORE_IO',
      `S3 server error ${name || ''} HTTP ${status} (${what})`.replace('  ', ' '),
      'retry later',
      true,
    );
  }
  if (status !== undefined && status >= 400) {
    return make(
      'STORE_IO',
      `S3 refused the request: ${name || `HTTP ${status}`}: ${reason} (${what})`,
      undefined,
      false,
    );
  }
  // No HTTP status: an error on the wire (a body stream cut mid-way, a parse error). Retry it.
  return make('STORE_IO', `S3 request failed: ${reason} (${what})`, endpointHint, true);
}
