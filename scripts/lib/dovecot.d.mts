// Types for dovecot.mjs (plain ESM JavaScript so that scripts run without a build).
export interface DovecotOptions {
  /** Instance directory (created); default: a new temp dir. */
  dir?: string;
  /** Listen port; default: a free one, retried on collision. */
  port?: number;
  /** Initial users: a count (user1..userN@example.test) or a list of names. */
  users?: number | string[];
  /** Password of the initial users and default of addUser(); default: random. */
  userPassword?: string;
  /** Default 'admin'. */
  masterUser?: string;
  /** Default: random. */
  masterPassword?: string;
  /** Hierarchy delimiter of the namespace; default '/'. */
  separator?: string;
  /** Root of the Maildir tree (default <dir>/mail); an existing tree is chowned to nobody:nogroup as root. */
  mailRoot?: string;
  /** mail_location template, `{root}` = mailRoot; default 'maildir:{root}/%d/%n/Maildir'. */
  mailLocation?: string;
  /** SASL mechanisms offered; default 'plain login'. */
  authMechanisms?: string;
  /** Create and subscribe Drafts/Sent/Trash/Junk/Archive for every user; default true. */
  autoSpecialUse?: boolean;
  /** Also offer TLS with a fresh self-signed certificate: STARTTLS on `port`, implicit TLS on `tlsPort`. */
  tls?: boolean;
  /** Default 15000. */
  startTimeoutMs?: number;
}

export interface DovecotInstance {
  readonly host: string;
  readonly port: number;
  /** Implicit-TLS (imaps) port, when started with tls. */
  readonly tlsPort?: number;
  /** The self-signed certificate (PEM file), when started with tls. */
  readonly certFile?: string;
  readonly pid: number;
  readonly dir: string;
  readonly conf: string;
  readonly logFile: string;
  /** passwd-file of the initial users. */
  readonly usersFile: string;
  /** One passwd-file per user added later (see addPasswdUser). */
  readonly usersDir: string;
  readonly masterUser: string;
  readonly masterPassword: string;
  readonly userPassword: string;
  /** Adds a user, usable at once; replaces an earlier password of that name. */
  addUser(name: string, password?: string): { user: string; password: string };
  /** The Maildir directory of a user, per the mail_location template. */
  maildirOf(user: string): string;
  /** TERM, then KILL after 5 s; resolves when the master has exited; removes `dir` if it was not given. */
  stop(): Promise<void>;
}

export function startDovecot(opts?: DovecotOptions): Promise<DovecotInstance>;
/** Adds a user to a per-user passwd directory (instant) or a passwd-file (blocks ≤ 1.1 s: Dovecot re-reads at most once a second). */
export function addPasswdUser(target: string, name: string, password: string): void;
export function maildirFor(mailLocation: string, user: string): string;
export function freePort(): Promise<number>;
