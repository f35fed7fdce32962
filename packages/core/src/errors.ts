/**
 * Errors the user can act on.
 *
 * Every failure that reaches a front end is a MailarkError with a stable `code`, a message that says
 * what failed and why, and a `hint` that names the fix. Adapters (stores, IMAP) attach the code where
 * the error arises; the CLI maps codes to exit codes in one place (exitCodeFor). InternalError means
 * "this is a bug": it carries no hint because there is nothing the user can do but report it.
 */

export type ErrorCode =
  | 'USAGE' // bad arguments or options
  | 'CONFIG' // bad configuration file or environment
  | 'NO_REPOSITORY' // nothing initialised at that location
  | 'REPOSITORY_EXISTS' // init on an existing repository
  | 'FORMAT_UNSUPPORTED' // repository written by a newer mailark
  | 'WRONG_PASSWORD' // no key opens with that password
  | 'LOCKED' // another process holds a conflicting lock
  | 'CORRUPT' // authentication failed, truncated or malformed object
  | 'NOT_FOUND' // snapshot, message reference, user or folder that does not exist
  | 'OBJECT_NOT_FOUND' // store: key absent
  | 'OBJECT_EXISTS' // store: put on an existing key
  | 'STORE_UNREACHABLE' // endpoint down, DNS, connection refused, timeouts after retries
  | 'STORE_AUTH' // credentials refused
  | 'STORE_BUCKET_MISSING' // S3 bucket does not exist
  | 'STORE_IO' // any other store failure (disk full, permission denied, 5xx after retries)
  | 'IMAP_CONNECT' // server unreachable, TLS failure
  | 'IMAP_AUTH' // login refused
  | 'IMAP_USER_MISMATCH' // logged-in session is not the requested user
  | 'IMAP_PROTOCOL' // NO/BAD/BYE or unexpected response
  | 'PARTIAL' // operation finished but some items failed (exit 3)
  | 'INTERRUPTED' // SIGINT/SIGTERM
  | 'INTERNAL'; // a bug

export interface MailarkErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Structured facts for --json output and logs (never secrets). */
  details?: Record<string, unknown>;
}

export class MailarkError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: MailarkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MailarkError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }
}

/** A broken invariant inside mailark: report it, there is no user-side fix. */
export class InternalError extends MailarkError {
  constructor(message: string, cause?: unknown) {
    super('INTERNAL', message, {
      cause,
      hint: 'this is a bug in mailark: please report it with the output above',
    });
    this.name = 'InternalError';
  }
}

export function isMailarkError(err: unknown, code?: ErrorCode): err is MailarkError {
  return err instanceof MailarkError && (code === undefined || err.code === code);
}

/**
 * Exit codes, as restic's (what operators' scripts already know):
 * 0 ok, 1 failure, 2 usage, 3 partial, 10 no repository, 11 locked, 12 wrong password, 130 interrupted.
 */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  PARTIAL: 3,
  NO_REPOSITORY: 10,
  LOCKED: 11,
  WRONG_PASSWORD: 12,
  INTERRUPTED: 130,
} as const;

export function exitCodeFor(err: unknown): number {
  if (!(err instanceof MailarkError)) return EXIT.FAILURE;
  switch (err.code) {
    case 'USAGE':
    case 'CONFIG':
      return EXIT.USAGE;
    case 'NO_REPOSITORY':
      return EXIT.NO_REPOSITORY;
    case 'LOCKED':
      return EXIT.LOCKED;
    case 'WRONG_PASSWORD':
      return EXIT.WRONG_PASSWORD;
    case 'PARTIAL':
      return EXIT.PARTIAL;
    case 'INTERRUPTED':
      return EXIT.INTERRUPTED;
    default:
      return EXIT.FAILURE;
  }
}

/** The text of any thrown value, for logs; never includes a stack. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
