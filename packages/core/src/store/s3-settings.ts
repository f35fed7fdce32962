/**
 * Where and how an S3Store connects, resolved from options and the environment (pure, unit-tested).
 *
 * The rule it keeps: an explicit option beats the environment, which beats the default. The endpoint
 * decides the rest: a custom endpoint (MinIO, Ceph, s3rver) gets path-style URLs and no SDK streaming
 * checksums; Amazon S3 gets virtual-hosted URLs and the SDK's defaults.
 */
import { MailarkError } from '../errors.js';

export interface S3SettingsInput {
  bucket: string;
  /** Key prefix inside the bucket (one tenant's repository), without leading or trailing slash. */
  prefix?: string;
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. */
  region?: string;
  /** Custom endpoint URL. Default: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, else AWS. */
  endpoint?: string;
  /** Path-style addressing. Default: MAILARK_S3_PATH_STYLE=0/1, else true for custom endpoints. */
  forcePathStyle?: boolean;
}

/** The settings an S3Store runs with, after defaults (pure: see resolveS3Settings). */
export interface S3Settings {
  bucket: string;
  prefix: string;
  region: string;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  /** Is this Amazon S3 itself (then the SDK's default checksums are safe)? */
  aws: boolean;
}

/** An endpoint is AWS when none is given or its host is under amazonaws.com. */
export function isAwsEndpoint(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return true;
  try {
    const host = new URL(endpoint).hostname;
    return host === 'amazonaws.com' || host.endsWith('.amazonaws.com');
  } catch {
    return false;
  }
}

/**
 * A usage error before any request for an endpoint that is not an http(s) URL: the SDK would only
 * fail later with a bare "Invalid URL", or read "minio:9000" as a URL of scheme "minio:".
 */
function checkEndpointUrl(endpoint: string): void {
  let protocol: string | undefined;
  try {
    protocol = new URL(endpoint).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new MailarkError('USAGE', `S3 endpoint ${JSON.stringify(endpoint)} is not an http(s) URL`, {
      hint:
        'give the whole URL with its scheme, e.g. --s3-endpoint https://s3.example.net or ' +
        'http://127.0.0.1:9000 (also MAILARK_S3_ENDPOINT, AWS_ENDPOINT_URL_S3)',
    });
  }
}

/** Parses MAILARK_S3_PATH_STYLE: 1/true/yes → true, 0/false/no → false, else undefined. */
export function parsePathStyle(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new MailarkError('CONFIG', `MAILARK_S3_PATH_STYLE must be 0 or 1, not ${JSON.stringify(value)}`, {
    hint: 'set MAILARK_S3_PATH_STYLE=1 for path-style URLs (MinIO, Ceph, s3rver) or 0 for virtual hosts',
  });
}

export function resolveS3Settings(
  opts: S3SettingsInput,
  env: Record<string, string | undefined>,
): S3Settings {
  const endpoint = opts.endpoint || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  if (endpoint !== undefined) checkEndpointUrl(endpoint);
  const aws = isAwsEndpoint(endpoint);
  return {
    bucket: opts.bucket,
    prefix: (opts.prefix ?? '').replace(/^\/+|\/+$/g, ''),
    region: opts.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    endpoint,
    forcePathStyle: opts.forcePathStyle ?? parsePathStyle(env.MAILARK_S3_PATH_STYLE) ?? !aws,
    aws,
  };
}
