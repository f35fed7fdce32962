/**
 * vitest globalSetup of the `integration` project: one real Dovecot and one real S3 endpoint per run,
 * handed to tests with provide()/inject() (see fixtures.ts for the helpers built on them).
 *
 * By default both are started here (scripts/lib/dovecot.mjs, scripts/lib/s3-server.mjs) and stopped in
 * teardown. A server that cannot start FAILS the run with the reason: nothing is silently skipped.
 *
 * External endpoints (a second run against real infrastructure):
 *   S3:   MAILARK_TEST_S3_ENDPOINT, MAILARK_TEST_S3_BUCKET, MAILARK_TEST_S3_ACCESS_KEY_ID,
 *         MAILARK_TEST_S3_SECRET_ACCESS_KEY, MAILARK_TEST_S3_REGION (default us-east-1).
 *         The bucket must exist; tests write under fresh prefixes and never delete the bucket.
 *   IMAP: MAILARK_TEST_IMAP_HOST, MAILARK_TEST_IMAP_PORT (default 143), MAILARK_TEST_IMAP_MASTER_USER,
 *         MAILARK_TEST_IMAP_MASTER_PASSWORD, MAILARK_TEST_IMAP_USERS_FILE (where newUser() adds users: a
 *         directory named in a passdb/userdb `passwd-file .../%u` (one file per user, instant), or a
 *         passwd-file this process may append to (each newUser() then waits ~1 s for Dovecot to re-read)), MAILARK_TEST_IMAP_MAIL_LOCATION (optional,
 *         the server's mail_location, for maildirOf()). Plain IMAP without TLS, as a test server.
 * MAILARK_TEST_KEEP=1 keeps the servers' directories after the run (for post-mortems).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type DovecotInstance, startDovecot } from '../../scripts/lib/dovecot.mjs';
import { type S3Server, startS3 } from '../../scripts/lib/s3-server.mjs';

/** The IMAP server every integration test shares. Each test logs in as a brand-new user. */
export interface ProvidedDovecot {
  host: string;
  port: number;
  masterUser: string;
  masterPassword: string;
  /** Where newUser() adds users: a per-user passwd directory (instant) or a Dovecot passwd-file. */
  usersFile: string;
  /** mail_location of the server ("maildir:/…/%d/%n/Maildir"), when known. */
  mailLocation?: string;
  /** Hierarchy delimiter of the personal namespace. */
  separator: string;
  /** The private instance's config file (for doveadm -c, e.g. to kick a user); absent when external. */
  conf?: string;
  /** true when the server came from MAILARK_TEST_IMAP_* (not started by this run). */
  external: boolean;
}

/** The S3 endpoint every integration test shares; tests isolate themselves with freshPrefix(). */
export interface ProvidedS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  region: string;
  /** 's3rver' has known defects (no conditional writes, no suffix ranges): see scripts/lib/s3-server.mjs. */
  kind: 's3rver' | 'external';
}

declare module 'vitest' {
  export interface ProvidedContext {
    dovecot: ProvidedDovecot;
    s3: ProvidedS3;
    /** A directory for this run's temporary files, removed in teardown. */
    tmpRoot: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const tmpRoot = mkdtempSync(join(tmpdir(), 'mailark-it-'));
  const env = process.env;
  const keep = env.MAILARK_TEST_KEEP === '1';
  let dovecot: DovecotInstance | undefined;
  let s3: S3Server | undefined;
  const teardown = async () => {
    await Promise.allSettled([dovecot?.stop(), s3?.stop()]);
    if (!keep) {
      for (const d of [tmpRoot, dovecot?.dir, s3?.dir]) if (d) rmSync(d, { recursive: true, force: true });
    }
  };
  try {
    const [imap, store] = await Promise.all([provideImap(), provideS3()]);
    dovecot = imap.instance;
    s3 = store.instance;
    project.provide('dovecot', imap.provided);
    project.provide('s3', store.provided);
    project.provide('tmpRoot', tmpRoot);
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}

async function provideImap(): Promise<{ provided: ProvidedDovecot; instance?: DovecotInstance }> {
  const env = process.env;
  if (env.MAILARK_TEST_IMAP_HOST) {
    const provided: ProvidedDovecot = {
      host: env.MAILARK_TEST_IMAP_HOST,
      port: Number(env.MAILARK_TEST_IMAP_PORT ?? 143),
      masterUser: required('MAILARK_TEST_IMAP_MASTER_USER'),
      masterPassword: required('MAILARK_TEST_IMAP_MASTER_PASSWORD'),
      usersFile: required('MAILARK_TEST_IMAP_USERS_FILE'),
      separator: env.MAILARK_TEST_IMAP_SEPARATOR ?? '/',
      external: true,
    };
    if (env.MAILARK_TEST_IMAP_MAIL_LOCATION) provided.mailLocation = env.MAILARK_TEST_IMAP_MAIL_LOCATION;
    return { provided };
  }
  const instance = await startDovecot({ dir: mkdtempSync(join(tmpdir(), 'mailark-dv-')) });
  return {
    instance,
    provided: {
      host: instance.host,
      port: instance.port,
      masterUser: instance.masterUser,
      masterPassword: instance.masterPassword,
      usersFile: instance.usersDir,
      mailLocation: `maildir:${join(instance.dir, 'mail')}/%d/%n/Maildir`,
      separator: '/',
      conf: instance.conf,
      external: false,
    },
  };
}

async function provideS3(): Promise<{ provided: ProvidedS3; instance?: S3Server }> {
  const env = process.env;
  if (env.MAILARK_TEST_S3_ENDPOINT) {
    return {
      provided: {
        endpoint: env.MAILARK_TEST_S3_ENDPOINT,
        bucket: required('MAILARK_TEST_S3_BUCKET'),
        accessKeyId: required('MAILARK_TEST_S3_ACCESS_KEY_ID'),
        secretAccessKey: required('MAILARK_TEST_S3_SECRET_ACCESS_KEY'),
        region: env.MAILARK_TEST_S3_REGION ?? 'us-east-1',
        kind: 'external',
      },
    };
  }
  const instance = await startS3({ dir: mkdtempSync(join(tmpdir(), 'mailark-s3-')) });
  return {
    instance,
    provided: {
      endpoint: instance.endpoint,
      accessKeyId: instance.accessKeyId,
      secretAccessKey: instance.secretAccessKey,
      bucket: instance.bucket,
      region: instance.region,
      kind: 's3rver',
    },
  };
}

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} must be set when an external test endpoint is configured`);
  return v;
}
