/**
 * The repository config (object `config`): format version, repository id, pack size, chunker
 * parameters, proven store capabilities. Sealed JSON under the master key (aad "config"); written once
 * by init and never changed.
 */
import { randomBytes } from 'node:crypto';
import { MailarkError } from '../errors.js';
import { open, randomId, seal } from './crypto.js';

export const REPO_VERSION = 1;

export interface RepoConfig {
  version: 1;
  id: string;
  created: string;
  packSize: number;
  chunker: { min: number; avg: number; max: number; seed: string /* hex, gear-table seed */ };
  capabilities: { conditionalWrites: boolean };
}

/** ~16 MiB packs: few S3 requests per GB, and a lost pack costs little to re-upload. */
export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;

/**
 * Chunk sizes for message bodies. Mail is small (median tens of KiB) and dedup across messages hinges
 * on attachments repeating inside different messages, so chunks are far smaller than restic's file
 * chunks: min 4 KiB, avg 16 KiB, max 64 KiB (≈ 130k chunks for 2 GB of mail).
 */
export const DEFAULT_CHUNKER = { min: 4 * 1024, avg: 16 * 1024, max: 64 * 1024 } as const;

const CONFIG_AAD = Buffer.from('config');

/** Nothing rebuilds a config (it holds the chunker seed), and no command runs without one. */
const CONFIG_LOST_HINT =
  'the config object cannot be rebuilt and no command (check included) runs without it: restore ' +
  '"config" from a copy of the repository (a replica, a backup of the bucket, or S3 object versioning)';

export function newConfig(packSize: number, capabilities: { conditionalWrites: boolean }): RepoConfig {
  return {
    version: REPO_VERSION,
    id: randomId(),
    created: new Date().toISOString(),
    packSize,
    chunker: { ...DEFAULT_CHUNKER, seed: randomBytes(32).toString('hex') },
    capabilities,
  };
}

/** Seals a config (tests also seal other JSON, e.g. a config from a future format version). */
export function sealConfig(encKey: Uint8Array, config: RepoConfig | Record<string, unknown>): Uint8Array {
  return seal(encKey, Buffer.from(JSON.stringify(config)), CONFIG_AAD);
}

/**
 * Opens the config; CORRUPT when it does not authenticate or parse, FORMAT_UNSUPPORTED when written by
 * a newer format version.
 */
export function openConfig(encKey: Uint8Array, sealed: Uint8Array, location: string): RepoConfig {
  let plain: Uint8Array;
  try {
    plain = open(encKey, sealed, 'config', CONFIG_AAD);
  } catch (err) {
    // open()'s generic hint sends the user to "mailark check", which cannot run without a config.
    if (!(err instanceof MailarkError)) throw err;
    throw new MailarkError('CORRUPT', `${err.message} (repository ${location})`, {
      hint: CONFIG_LOST_HINT,
      cause: err,
      ...(err.details === undefined ? {} : { details: err.details }),
    });
  }
  let value: Partial<RepoConfig> & { version?: unknown };
  try {
    value = JSON.parse(Buffer.from(plain).toString('utf8'));
  } catch (err) {
    throw new MailarkError('CORRUPT', `repository object config in ${location} is not valid JSON`, {
      hint: CONFIG_LOST_HINT,
      cause: err,
    });
  }
  if (value.version !== REPO_VERSION) {
    throw new MailarkError(
      'FORMAT_UNSUPPORTED',
      `repository ${location} has format version ${String(value.version)}; this mailark reads version ${REPO_VERSION}`,
      { hint: 'upgrade mailark to a version that supports this repository format' },
    );
  }
  const c = value as RepoConfig;
  if (
    typeof c.id !== 'string' ||
    !Number.isInteger(c.packSize) ||
    c.packSize <= 0 ||
    typeof c.chunker?.seed !== 'string' ||
    typeof c.capabilities?.conditionalWrites !== 'boolean'
  ) {
    throw new MailarkError('CORRUPT', `repository object config in ${location} lacks required fields`, {
      hint: CONFIG_LOST_HINT,
    });
  }
  return c;
}
