/**
 * The services a command handler receives (wrangler style): the repository location and store, the
 * password, the repository itself (opened, optionally locked), output, and the interrupt signal.
 * Everything opened through the context is closed by main.ts after the handler, in reverse order,
 * whether it succeeded or failed; a handler never needs try/finally for these.
 *
 * Settings come from flags first, then the environment: -r/--repo or MAILARK_REPOSITORY,
 * --s3-endpoint/MAILARK_S3_ENDPOINT, --s3-path-style/MAILARK_S3_PATH_STYLE, --s3-region/MAILARK_S3_REGION,
 * --cache-dir/MAILARK_CACHE_DIR (else the platform's cache directory; --no-cache for none), and the
 * password as password.ts describes.
 */
import {
  MailarkError,
  type ObjectStore,
  openStore,
  Repository,
  resolveCacheDir,
  type ScryptParams,
} from '@mailark/core';
import type { GlobalOptions } from './command.js';
import type { Output } from './output.js';
import { type Env, REPOSITORY_PASSWORD, readPassword } from './password.js';

export interface OpenRepositoryOptions {
  /** Takes this lock for the duration of the command (released afterwards, also on failure). */
  lock?: 'shared' | 'exclusive';
  /**
   * How to treat damaged index objects (Repository.open): 'strict' (default) fails, 'lenient' skips and
   * records them in repo.indexErrors (check), 'skip' loads no index (repair index), 'deferred' loads
   * it when first needed (backup).
   */
  index?: 'strict' | 'lenient' | 'skip' | 'deferred';
  /**
   * false: read index and snapshot objects from the store, not the local cache (check must judge the
   * store's own copies, as restic's check does). Default: the cache, unless --no-cache.
   */
  cache?: boolean;
  /** Called as the key derivation starts (see core's OpenOptions.onKeyDerivation). */
  onKeyDerivation?: () => void;
}

export interface CommandContext {
  readonly output: Output;
  /** Aborted on SIGINT/SIGTERM: pass it to long operations; they stop and main exits 130. */
  readonly signal: AbortSignal;
  readonly env: Env;
  /** The command path as typed, e.g. 'key add' (used as the lock owner). */
  readonly commandName: string;
  /**
   * The local cache's base directory: --cache-dir, MAILARK_CACHE_DIR, else the platform's (XDG);
   * undefined with --no-cache or when none can be determined (no HOME). See core's resolveCacheDir.
   */
  readonly cacheDir: string | undefined;
  /** -r/--repo or MAILARK_REPOSITORY; USAGE error with a hint when neither is set. */
  repositoryLocation(): string;
  /** The store at the repository location, opened once per run. */
  openStore(): Promise<ObjectStore>;
  /** The repository password (read once per run). */
  password(): Promise<string>;
  /** Opens the repository at -r with the password, optionally locked. */
  openRepository(opts?: OpenRepositoryOptions): Promise<Repository>;
  /**
   * Key-derivation parameters for new keys (init, key add): the default unless MAILARK_TEST_KDF=fast,
   * a TEST-ONLY switch that makes scrypt cheap (N=1024) so test suites stay fast. Never use it for
   * real repositories: it makes passwords far easier to guess from a stolen key file.
   */
  keyDerivation(): ScryptParams | undefined;
  /** Registers a clean-up step run after the handler (last registered runs first). */
  defer(cleanup: () => Promise<void>): void;
  /** Registers the password so main.ts can scrub it from any error text (belt and braces). */
  registerSecret(secret: string): void;
}

export interface ContextOptions {
  args: GlobalOptions;
  output: Output;
  env: Env;
  signal: AbortSignal;
  commandName: string;
  /** Base for relative repository paths (default: the process's working directory). */
  cwd?: string | undefined;
}

/** The concrete context; main.ts calls close() after the handler. */
export class RunContext implements CommandContext {
  readonly output: Output;
  readonly signal: AbortSignal;
  readonly env: Env;
  readonly commandName: string;
  readonly cacheDir: string | undefined;
  readonly secrets: string[] = [];
  private readonly cwd: string | undefined;
  private readonly args: GlobalOptions;
  private readonly cleanups: Array<() => Promise<void>> = [];
  private store: Promise<ObjectStore> | undefined;
  private passwordValue: Promise<string> | undefined;

  constructor(opts: ContextOptions) {
    this.args = opts.args;
    this.output = opts.output;
    this.env = opts.env;
    this.signal = opts.signal;
    this.commandName = opts.commandName;
    this.cwd = opts.cwd;
    this.cacheDir = resolveCacheDir({
      flag: opts.args.cacheDir,
      enabled: opts.args.cache !== false,
      env: opts.env,
    });
  }

  repositoryLocation(): string {
    const location = setting(this.args.repo, this.env.MAILARK_REPOSITORY);
    if (location === undefined) {
      throw new MailarkError('USAGE', 'no repository given', {
        hint: 'pass -r LOCATION or set MAILARK_REPOSITORY, e.g. -r /srv/mailark/acme or -r s3://bucket/acme',
      });
    }
    return location;
  }

  openStore(): Promise<ObjectStore> {
    if (this.store === undefined) {
      const location = this.repositoryLocation();
      const pathStyle = this.args.s3PathStyle ?? envBoolean(this.env, 'MAILARK_S3_PATH_STYLE');
      this.store = Promise.resolve(
        openStore(location, {
          s3Endpoint: setting(this.args.s3Endpoint, this.env.MAILARK_S3_ENDPOINT),
          s3PathStyle: pathStyle,
          s3Region: setting(this.args.s3Region, this.env.MAILARK_S3_REGION),
          env: { ...this.env },
          ...(this.cwd === undefined ? {} : { cwd: this.cwd }),
        }),
      );
      const opened = this.store;
      this.defer(async () => (await opened).close());
    }
    return this.store;
  }

  password(): Promise<string> {
    if (this.passwordValue === undefined) {
      this.passwordValue = readPassword({ ...REPOSITORY_PASSWORD, file: this.args.passwordFile }, this.env);
      this.passwordValue.then(
        (p) => this.registerSecret(p),
        () => {},
      );
    }
    return this.passwordValue;
  }

  async openRepository(opts: OpenRepositoryOptions = {}): Promise<Repository> {
    // Password first: a missing password is a usage error that needs no network round trip.
    const password = await this.password();
    const store = await this.openStore();
    const repo = await Repository.open(store, password, {
      reporter: this.output.progress,
      ...(opts.index === undefined ? {} : { index: opts.index }),
      ...(opts.onKeyDerivation === undefined ? {} : { onKeyDerivation: opts.onKeyDerivation }),
      ...(opts.cache === false || this.cacheDir === undefined ? {} : { cacheDir: this.cacheDir }),
    });
    this.defer(() => repo.close());
    if (opts.lock !== undefined) {
      const lock = await repo.lock(opts.lock, `mailark ${this.commandName}`);
      this.defer(() => lock.release());
    }
    return repo;
  }

  keyDerivation(): ScryptParams | undefined {
    const v = this.env.MAILARK_TEST_KDF;
    if (v === undefined || v === '') return undefined;
    if (v === 'fast') return { N: 1024, r: 8, p: 1 };
    throw new MailarkError('CONFIG', `MAILARK_TEST_KDF=${v} is not understood`, {
      hint: 'MAILARK_TEST_KDF=fast is for test suites only; unset it for real repositories',
    });
  }

  defer(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  registerSecret(secret: string): void {
    if (secret !== '' && !this.secrets.includes(secret)) this.secrets.push(secret);
  }

  /** Runs the clean-ups, last first; all run even if one fails; the first failure is rethrown. */
  async close(): Promise<void> {
    let first: unknown;
    while (this.cleanups.length > 0) {
      const cleanup = this.cleanups.pop()!;
      try {
        await cleanup();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }
}

function setting(flag: string | undefined, env: string | undefined): string | undefined {
  if (flag !== undefined && flag !== '') return flag;
  return env === undefined || env === '' ? undefined : env;
}

function envBoolean(env: Env, name: string): boolean | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new MailarkError('CONFIG', `${name}=${v} is not a boolean`, { hint: `set ${name} to true or false` });
}
