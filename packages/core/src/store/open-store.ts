/**
 * openStore: a repository location string (what users type after `-r`) → an ObjectStore.
 *
 *   /srv/mailark/acme, ./acme, file:///srv/mailark/acme      → LocalDirStore
 *   s3://bucket/prefix, s3:bucket/prefix                      → S3Store (inside a RetryingStore)
 *   s3:https://host:9000/bucket/prefix, s3:host:9000/bucket   → the same, with that endpoint (restic form)
 *
 * The rule it keeps: parsing is pure (parseStoreLocation, unit-tested) and anything unrecognised is a
 * USAGE error naming the accepted forms, never a directory accidentally created under a strange name.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MailarkError } from '../errors.js';
import { LocalDirStore } from './local-dir-store.js';
import type { ObjectStore } from './object-store.js';
import { RetryingStore, type StoreRetryOptions } from './retrying-store.js';
import { S3Store } from './s3-store.js';

export type StoreLocation =
  | { kind: 'local'; path: string }
  | { kind: 's3'; bucket: string; prefix: string; endpoint?: string; region?: string };

type S3Location = Extract<StoreLocation, { kind: 's3' }>;

export interface OpenStoreOptions {
  /** --s3-endpoint; wins over a restic-form host and over AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. */
  s3Endpoint?: string;
  /** --s3-path-style; default MAILARK_S3_PATH_STYLE, else true for custom endpoints. */
  s3PathStyle?: boolean;
  /** --s3-region; default AWS_REGION / AWS_DEFAULT_REGION / us-east-1. */
  s3Region?: string;
  /** From the repository config, once init's probe proved it. */
  conditionalWrites?: boolean;
  /** Outer retry policy for S3 (tests cap it). */
  retry?: StoreRetryOptions;
  /** SDK attempts per S3 request (default 3). */
  s3MaxAttempts?: number;
  /** Base for relative paths (default process.cwd()). */
  cwd?: string;
  /** Environment for defaults (default process.env). */
  env?: Record<string, string | undefined>;
}

const FORMS = 'use a directory path, file:///path or s3://bucket/prefix';
/** S3 bucket names: 3-63 of lowercase letters, digits, dots and hyphens (AWS naming rules). */
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function usage(message: string): MailarkError {
  return new MailarkError('USAGE', message, { hint: FORMS });
}

/** `bucket/some/prefix/` → bucket + `some/prefix`, validated. */
function bucketAndPrefix(rest: string, location: string): { bucket: string; prefix: string } {
  const trimmed = rest.replace(/^\/+|\/+$/g, '');
  const slash = trimmed.indexOf('/');
  const bucket = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const prefix = slash < 0 ? '' : trimmed.slice(slash + 1).replace(/\/{2,}/g, '/');
  if (!BUCKET_RE.test(bucket)) {
    throw usage(
      `invalid S3 bucket name ${JSON.stringify(bucket)} in repository location ${JSON.stringify(location)}`,
    );
  }
  if (prefix.split('/').some((s) => s === '.' || s === '..')) {
    throw usage(
      `invalid S3 key prefix ${JSON.stringify(prefix)} in repository location ${JSON.stringify(location)}`,
    );
  }
  return { bucket, prefix };
}

/** A restic-style first segment that is a host, not a bucket: it has a port, or is AWS or localhost. */
function looksLikeHost(segment: string): boolean {
  return segment.includes(':') || segment === 'localhost' || /(^|\.)amazonaws\.com$/.test(segment);
}

export function parseStoreLocation(location: string, cwd: string = process.cwd()): StoreLocation {
  const loc = location.trim();
  if (loc === '') throw usage('the repository location is empty');
  if (loc.startsWith('s3://')) return { kind: 's3', ...bucketAndPrefix(loc.slice(5), location) };
  if (loc.startsWith('s3:')) {
    const rest = loc.slice(3);
    const url = /^(https?):\/\/([^/]+)\/(.*)$/.exec(rest);
    if (url !== null) {
      return { kind: 's3', endpoint: `${url[1]}://${url[2]}`, ...bucketAndPrefix(url[3] ?? '', location) };
    }
    if (/^https?:/.test(rest))
      throw usage(`missing bucket in repository location ${JSON.stringify(location)}`);
    const first = rest.split('/')[0] ?? '';
    if (looksLikeHost(first) && rest.includes('/')) {
      const out: S3Location = { kind: 's3', ...bucketAndPrefix(rest.slice(first.length + 1), location) };
      const region = /^s3[.-]([a-z0-9-]+)\.amazonaws\.com$/.exec(first)?.[1];
      if (region !== undefined) out.region = region;
      // Plain AWS needs no endpoint; any other host is one, over https as restic assumes.
      if (!/(^|\.)amazonaws\.com$/.test(first)) out.endpoint = `https://${first}`;
      return out;
    }
    return { kind: 's3', ...bucketAndPrefix(rest, location) };
  }
  if (loc.startsWith('file:')) {
    let p: string;
    try {
      p = loc.startsWith('file://') ? fileURLToPath(loc) : loc.slice(5);
    } catch (err) {
      throw new MailarkError('USAGE', `invalid file URL ${JSON.stringify(location)}`, {
        hint: FORMS,
        cause: err,
      });
    }
    if (p === '') throw usage(`invalid file URL ${JSON.stringify(location)}`);
    return { kind: 'local', path: path.resolve(cwd, p) };
  }
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(loc);
  if (scheme !== null) {
    throw usage(`unknown repository location scheme '${scheme[1]}:' in ${JSON.stringify(location)}`);
  }
  return { kind: 'local', path: path.resolve(cwd, loc) };
}

export async function openStore(location: string, opts: OpenStoreOptions = {}): Promise<ObjectStore> {
  const parsed = parseStoreLocation(location, opts.cwd);
  if (parsed.kind === 'local') return new LocalDirStore(parsed.path);
  const endpoint = opts.s3Endpoint ?? parsed.endpoint;
  const region = opts.s3Region ?? parsed.region;
  const s3 = new S3Store({
    bucket: parsed.bucket,
    prefix: parsed.prefix,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(region === undefined ? {} : { region }),
    ...(opts.s3PathStyle === undefined ? {} : { forcePathStyle: opts.s3PathStyle }),
    ...(opts.conditionalWrites === undefined ? {} : { conditionalWrites: opts.conditionalWrites }),
    ...(opts.s3MaxAttempts === undefined ? {} : { maxAttempts: opts.s3MaxAttempts }),
    ...(opts.env === undefined ? {} : { env: opts.env }),
  });
  return new RetryingStore(s3, opts.retry);
}
