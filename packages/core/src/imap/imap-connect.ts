/**
 * One logged-in imapflow connection as a given user, and the proof that it IS that user.
 *
 * The rule: never open someone else's mailbox. A master/admin login is only accepted when the server
 * authorized the exact target identity; a mistyped user fails (IMAP_AUTH from the server, or
 * IMAP_USER_MISMATCH from the checks below), and 'authzid' never silently degrades to a plain LOGIN
 * as the admin (imapflow would, when the server lacks AUTH=PLAIN).
 *
 * What proves the identity:
 *  - 'authzid': a successful SASL PLAIN exchange with authzid=user (RFC 4616 §2: the server
 *    authorizes the session AS the authzid or refuses it);
 *  - 'master-separator': the server's master-user login "user*admin" (a server without master users
 *    refuses that name);
 *  - 'user': the user's own credentials;
 *  - in every form, an identity the server reports in its ID response (RFC 2971) where it sends one
 *    (fields x-user, x-authenticated-user, user, login) must equal the target user.
 */
import { rootCertificates } from 'node:tls';
import type { ImapFlow, ImapFlowOptions } from 'imapflow';
import { MailarkError } from '../errors.js';
import type { Reporter } from '../progress.js';
import type { ImapEndpoint } from './imap-endpoint.js';
import { imapError } from './imap-errors.js';

export type IdentityProof = 'sasl-authzid' | 'master-login' | 'user-login';

export interface ConnectOptions {
  reporter: Reporter;
  userPassword?: string;
  signal?: AbortSignal;
}

export interface Connection {
  client: ImapFlow;
  verifiedBy: IdentityProof;
  /** The server's identity report (RFC 2971 ID) matched the user too. */
  serverConfirmed: boolean;
}

const SERVER_IDENTITY_FIELDS = ['x-user', 'x-authenticated-user', 'user', 'login'];

// imapflow costs ~250 ms CPU to load: only a command that talks IMAP pays it (find and restore --eml don't).
let imapflowModule: Promise<typeof import('imapflow')> | undefined;
let imapflowClass: typeof ImapFlow | undefined;
function loadImapFlow(): Promise<typeof import('imapflow')> {
  imapflowModule ??= import('imapflow');
  return imapflowModule;
}

/**
 * Starts loading the IMAP library in the background, without waiting. A command that will connect
 * calls it before opening the repository, so the load overlaps the key derivation (scrypt runs on
 * the thread pool while the main thread would idle). A failure surfaces at the first connect.
 */
export function preloadImap(): void {
  loadImapFlow().catch(() => {});
}

/** Connects, logs in as `user` per endpoint.auth, and verifies the session identity. */
export async function connectAs(
  endpoint: ImapEndpoint,
  user: string,
  opts: ConnectOptions,
): Promise<Connection> {
  if (user === '' || /[\r\n\0]/.test(user)) {
    throw new MailarkError('USAGE', `invalid IMAP user name ${JSON.stringify(user)}`, {
      hint: 'give the login name, e.g. alice@example.com',
    });
  }
  const ctx = { url: endpoint.url, user, action: 'login', ...adminOf(endpoint) };
  const { ImapFlow } = await loadImapFlow();
  imapflowClass = ImapFlow;
  const client = new ImapFlow(clientOptions(endpoint, user, opts));
  // imapflow emits 'error' on socket failures; an unheard 'error' event would crash the process.
  client.on('error', (err: unknown) => {
    opts.reporter.log('debug', `IMAP connection error: ${err instanceof Error ? err.message : String(err)}`, {
      url: endpoint.url,
      user,
    });
  });
  const guard = guardLogin(client, endpoint);
  const onAbort = () => client.close();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await client.connect();
  } catch (err) {
    client.close();
    if (opts.signal?.aborted) throw new MailarkError('INTERRUPTED', 'interrupted while logging in');
    throw imapError(err, ctx);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  try {
    const verifiedBy = checkLoginIdentity(guard, endpoint, user);
    const serverConfirmed = checkServerIdentity(client, endpoint, user);
    return { client, verifiedBy, serverConfirmed };
  } catch (err) {
    client.close();
    throw err;
  }
}

function clientOptions(endpoint: ImapEndpoint, user: string, opts: ConnectOptions): ImapFlowOptions {
  const o: ImapFlowOptions = {
    host: endpoint.host,
    port: endpoint.port,
    secure: endpoint.implicitTls,
    logger: false,
    // One command at a time from mailark; IDLE between them would only cost round trips.
    disableAutoIdle: true,
    // RFC 7162: QRESYNC gives VANISHED (EARLIER) on CHANGEDSINCE fetches (enabled only if offered).
    qresync: true,
    // ENABLE (RFC 5161) waits for the first SELECT/EXAMINE (enableExtensions): LIST and STATUS do
    // not need it, so an unchanged mailbox saves its round trip. Only while imapflow's own ENABLE
    // step exists to be called later.
    disableAutoEnable: canDeferEnable(),
    connectionTimeout: 30_000,
    greetingTimeout: 16_000,
    tls: {
      rejectUnauthorized: !endpoint.insecure,
      minVersion: 'TLSv1.2',
      // Added to Node's default roots, not replacing them.
      ...(endpoint.ca === undefined ? {} : { ca: [...rootCertificates, endpoint.ca] }),
    },
    clientInfo: { name: 'mailark' },
    auth: authOptions(endpoint, user, opts),
  };
  if (!endpoint.implicitTls) {
    if (endpoint.tls === 'require') o.doSTARTTLS = true;
    if (endpoint.tls === 'off') o.doSTARTTLS = false;
  }
  if (endpoint.insecure) {
    opts.reporter.log('warn', `TLS certificate of ${endpoint.url} is not verified (insecure mode)`, {
      url: endpoint.url,
    });
  }
  return o;
}

function authOptions(
  endpoint: ImapEndpoint,
  user: string,
  opts: ConnectOptions,
): NonNullable<ImapFlowOptions['auth']> {
  if (endpoint.auth === 'user') {
    const pass = opts.userPassword ?? endpoint.password;
    if (pass === undefined) {
      throw new MailarkError('CONFIG', `no password for IMAP user ${user}`, {
        hint: "give the user's password, or configure an admin login (authzid or master-separator)",
      });
    }
    return { user, pass };
  }
  const admin = endpoint.adminUser;
  const pass = endpoint.password;
  if (admin === undefined || pass === undefined) {
    throw new MailarkError('CONFIG', `IMAP login form "${endpoint.auth}" needs an admin user and password`, {
      hint: 'configure the master/admin login and its password (file or environment variable)',
    });
  }
  if (endpoint.auth === 'authzid') return { user: admin, pass, authzid: user, loginMethod: 'AUTH=PLAIN' };
  return { user: `${user}${endpoint.separator}${admin}`, pass };
}

type AutoEnable = { autoEnable?: () => Promise<void> };

function canDeferEnable(): boolean {
  return typeof (imapflowClass?.prototype as AutoEnable | undefined)?.autoEnable === 'function';
}

/**
 * ENABLE CONDSTORE QRESYNC ... (RFC 5161, RFC 7162 §3.2.3: before any SELECT that uses QRESYNC) on a
 * connection whose login deferred it; imapflow's own step, so its fallbacks (IMAP4rev2) still apply.
 * A no-op where it already ran at login.
 */
export async function enableExtensions(client: ImapFlow): Promise<void> {
  const c = client as unknown as AutoEnable & { options: { disableAutoEnable?: boolean } };
  if (!c.options.disableAutoEnable || typeof c.autoEnable !== 'function') return;
  c.options.disableAutoEnable = false;
  await c.autoEnable();
}

/** What the login step really did, observed inside imapflow (see guardLogin). */
interface LoginGuard {
  /** The hooks are in place (false if a future imapflow renamed its internals). */
  installed: boolean;
  /** The identity imapflow's AUTHENTICATE/LOGIN step returned: the authzid for SASL PLAIN, else the login. */
  identity?: unknown;
}

/**
 * Two hooks on imapflow's internal login steps (`authenticate`, `run`), because its public
 * `authenticated` property is just `true` afterwards:
 *  - for 'authzid', refuse before logging in when the server offers no AUTH=PLAIN: imapflow would
 *    otherwise fall back to LOGIN as the admin with the authzid silently dropped;
 *  - record the identity the AUTHENTICATE/LOGIN command resolved with.
 * If the hooks cannot be installed, an 'authzid' login is refused rather than trusted blindly.
 */
function guardLogin(client: ImapFlow, endpoint: ImapEndpoint): LoginGuard {
  const guard: LoginGuard = { installed: false };
  const c = client as unknown as {
    authenticate?: () => Promise<unknown>;
    run?: (command: string, ...args: unknown[]) => Promise<unknown>;
    capabilities: Map<string, unknown>;
    authenticated?: unknown;
  };
  const authenticate = c.authenticate;
  const run = c.run;
  if (typeof authenticate !== 'function' || typeof run !== 'function') return guard;
  guard.installed = true;
  c.authenticate = function (this: typeof c) {
    if (endpoint.auth === 'authzid' && !this.capabilities.has('AUTH=PLAIN')) {
      return Promise.reject(
        new MailarkError(
          'IMAP_AUTH',
          `${endpoint.url} does not offer AUTH=PLAIN, needed for an authzid login`,
          {
            hint: 'enable the PLAIN mechanism on the server, or use the master-separator login form ("user*admin")',
            details: { url: endpoint.url },
          },
        ),
      );
    }
    return authenticate.call(this);
  };
  c.run = async function (this: typeof c, command: string, ...args: unknown[]) {
    // imapflow sends ID (RFC 2971) before logging in and again after when the first answer is thin
    // (Dovecot's pre-login answer is just its name). Only the answer after login can name the
    // session's user (checkServerIdentity), so the first one is a round trip for nothing: answering
    // it with nothing here makes imapflow ask once, after login.
    if (command === 'ID' && !this.authenticated) return undefined;
    const result =
      command === 'AUTHENTICATE' && this.capabilities.has('SASL-IR')
        ? await withInitialResponse(this as unknown as ExecHost, () => run.call(this, command, ...args))
        : await run.call(this, command, ...args);
    if (command === 'AUTHENTICATE' || command === 'LOGIN') guard.identity = result;
    return result;
  };
  return guard;
}

export type ExecAttribute = { type: string; value: unknown; sensitive?: boolean };
export type ExecOptions = { onPlusTag?: (response: unknown) => Promise<void> } & Record<string, unknown>;
export interface ExecHost {
  exec(command: string, attributes?: ExecAttribute[], options?: ExecOptions): Promise<unknown>;
  write(chunk: string): void;
}

/**
 * SASL-IR (RFC 4959): where the server offers it, AUTHENTICATE PLAIN carries its response on the
 * command line, one round trip instead of two (imapflow always waits for the server's empty "+"
 * first). imapflow's own PLAIN step still builds the response and shapes any failure: its "+"
 * handler is called up front, with its write captured, and its command sent with the response.
 * Anything but that exact step (another mechanism, a handler that writes nothing) goes as before.
 */
export async function withInitialResponse<T>(c: ExecHost, authenticate: () => Promise<T>): Promise<T> {
  const exec = c.exec;
  const restoreExec = override(c, 'exec');
  c.exec = async function (this: ExecHost, command, attributes, options) {
    const onPlusTag = options?.onPlusTag;
    const plain =
      command === 'AUTHENTICATE' &&
      attributes?.length === 1 &&
      attributes[0]?.type === 'ATOM' &&
      attributes[0].value === 'PLAIN' &&
      onPlusTag !== undefined;
    if (!plain) return exec.call(this, command, attributes, options);
    let response: string | undefined;
    const restoreWrite = override(this, 'write');
    this.write = (chunk: string) => {
      response = chunk;
    };
    try {
      await onPlusTag({});
    } finally {
      restoreWrite();
    }
    if (typeof response !== 'string' || response === '') return exec.call(this, command, attributes, options);
    return exec.call(this, command, [...attributes, { type: 'ATOM', value: response, sensitive: true }], {
      ...options,
      // The response is sent: a "+" now is no request for it. "*" cancels (RFC 3501 §6.2.2), and
      // the server fails the command, which imapflow reports as it would any refusal.
      onPlusTag: async () => this.write('*'),
    });
  };
  try {
    return await authenticate();
  } finally {
    restoreExec();
  }
}

/** Lets `key` be replaced on `obj`; the function returned puts back exactly what was there. */
function override<K extends keyof ExecHost>(obj: ExecHost, key: K): () => void {
  const own = Object.getOwnPropertyDescriptor(obj, key);
  return () => {
    if (own === undefined) delete (obj as Partial<ExecHost>)[key];
    else Object.defineProperty(obj, key, own);
  };
}

function checkLoginIdentity(guard: LoginGuard, endpoint: ImapEndpoint, user: string): IdentityProof {
  const expected =
    endpoint.auth === 'master-separator' ? `${user}${endpoint.separator}${endpoint.adminUser ?? ''}` : user;
  const got = guard.identity;
  // A string identity must be exactly the one asked for; for 'authzid' anything else (nothing
  // recorded, or the bare admin name after a LOGIN fallback) means the authzid was not used.
  if (typeof got === 'string' ? got !== expected : endpoint.auth === 'authzid') {
    throw mismatch(endpoint, user, typeof got === 'string' ? got : 'an unverified identity');
  }
  return endpoint.auth === 'authzid'
    ? 'sasl-authzid'
    : endpoint.auth === 'master-separator'
      ? 'master-login'
      : 'user-login';
}

function checkServerIdentity(client: ImapFlow, endpoint: ImapEndpoint, user: string): boolean {
  const info = client.serverInfo as Record<string, unknown> | null;
  if (!info) return false;
  for (const field of SERVER_IDENTITY_FIELDS) {
    const v = info[field];
    if (typeof v !== 'string' || v === '' || v.includes('%')) continue; // "%u": an unexpanded template
    if (v.toLowerCase() !== user.toLowerCase()) throw mismatch(endpoint, user, v);
    return true;
  }
  return false;
}

function mismatch(endpoint: ImapEndpoint, user: string, got: string): MailarkError {
  return new MailarkError('IMAP_USER_MISMATCH', `${endpoint.url} opened a session for ${got}, not ${user}`, {
    hint: 'refusing to touch a mailbox that may belong to someone else: check the admin login form and user name',
    details: { url: endpoint.url, user, sessionUser: got },
  });
}

function adminOf(endpoint: ImapEndpoint): { adminUser?: string } {
  return endpoint.auth !== 'user' && endpoint.adminUser !== undefined
    ? { adminUser: endpoint.adminUser }
    : {};
}
