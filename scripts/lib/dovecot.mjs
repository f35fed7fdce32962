// A private Dovecot IMAP server for tests, the demo and benchmarks.
//
// Each call starts its OWN instance (own config, base_dir, state, log and passwd-files under `dir`),
// never the system service, listening on a free 127.0.0.1 port with plain IMAP (no TLS):
// - Maildir storage under `mailRoot` (default <dir>/mail), template `mailLocation`;
// - a master user usable both as SASL PLAIN authzid (authcid=admin, authzid=user) and as
//   LOGIN "user*admin" (auth_master_user_separator);
// - special-use folders (RFC 6154) Drafts, Sent, Trash, Junk, Archive, auto-subscribed;
// - CONDSTORE/QRESYNC (RFC 7162, built into Dovecot 2.3) with mailbox_list_index.
// Users live in passwd-files: the initial ones in <dir>/etc/users, those added later in one file each
// under <dir>/etc/users.d/ (passdb path with %u). Why not append to one file: Dovecot re-reads a
// changed passwd-file at most once per second, so a user appended right after any other login was
// refused for up to a second (measured). A new per-user file is opened on its first lookup, so
// every test can log in as a brand-new user at once. No auth cache is configured.
//
// The rule it keeps: start fully or throw with the reason and the last log lines; stop() kills only
// the master process it started.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const HOST = '127.0.0.1';
const env = process.env;
const DEFAULT_LOCATION = 'maildir:{root}/%d/%n/Maildir';

/**
 * @typedef {object} DovecotOptions
 * @property {string} [dir]             instance directory (created; default: a new temp dir)
 * @property {number} [port]            listen port (default: a free one, retried on collision)
 * @property {number | string[]} [users]  initial users: a count (user1..userN@example.test) or names
 * @property {string} [userPassword]    password of the initial users (default: random)
 * @property {string} [masterUser]      default 'admin'
 * @property {string} [masterPassword]  default: random
 * @property {string} [separator]       hierarchy delimiter of the namespace (default '/')
 * @property {string} [mailRoot]        root of the Maildir tree (default <dir>/mail); an existing tree
 *                                      is chowned to nobody:nogroup when running as root
 * @property {string} [mailLocation]    mail_location template, `{root}` = mailRoot
 *                                      (default 'maildir:{root}/%d/%n/Maildir')
 * @property {string} [authMechanisms] SASL mechanisms offered (default 'plain login')
 * @property {boolean} [autoSpecialUse] create and subscribe Drafts/Sent/Trash/Junk/Archive for every
 *                                      user (default true; false keeps a served tree as it is)
 * @property {boolean} [tls]           also offer TLS with a fresh self-signed certificate (CN localhost,
 *                                      SAN 127.0.0.1): STARTTLS on `port` and implicit TLS on `tlsPort`
 * @property {number} [startTimeoutMs]  default 15000
 */

/**
 * Starts a private Dovecot. Resolves once it answers with an IMAP greeting.
 * @param {DovecotOptions} [opts]
 */
export async function startDovecot(opts = {}) {
  const dovecot = findBinary('dovecot');
  const doveconf = findBinary('doveconf');
  if (!dovecot || !doveconf) {
    throw new Error('dovecot is not installed: run "apt-get install -y dovecot-imapd" (Debian/Ubuntu)');
  }
  const dir = resolve(opts.dir ?? mkdtempSync(join(tmpdir(), 'mailark-dovecot-')));
  const masterUser = opts.masterUser ?? 'admin';
  const masterPassword = opts.masterPassword ?? randomBytes(12).toString('hex');
  const userPassword = opts.userPassword ?? randomBytes(12).toString('hex');
  const separator = opts.separator ?? '/';
  const mailRoot = resolve(opts.mailRoot ?? join(dir, 'mail'));
  const mailLocation = (opts.mailLocation ?? DEFAULT_LOCATION).replaceAll('{root}', mailRoot);
  const asRoot = process.getuid?.() === 0;
  // Unix sockets live in base_dir: their paths must stay under 108 bytes.
  if (join(dir, 'run', 'login', 'imap-urlauth-worker').length > 100) {
    throw new Error(`dovecot dir path is too long for unix sockets: ${dir} (use a shorter dir)`);
  }

  for (const sub of ['etc', 'run', 'state', 'log', 'home']) mkdirSync(join(dir, sub), { recursive: true });
  mkdirSync(mailRoot, { recursive: true });
  const usersFile = join(dir, 'etc', 'users');
  const usersDir = join(dir, 'etc', 'users.d');
  mkdirSync(usersDir, { recursive: true });
  const mastersFile = join(dir, 'etc', 'master-users');
  const logFile = join(dir, 'log', 'dovecot.log');
  const names =
    typeof opts.users === 'number'
      ? range(opts.users).map((i) => `user${i}@example.test`)
      : (opts.users ?? []);
  writeFileSync(usersFile, names.map((n) => passwdLine(n, userPassword)).join(''));
  writeFileSync(mastersFile, passwdLine(masterUser, masterPassword));
  // Dovecot's auth and mail processes run as other users: they must traverse and read these.
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'etc'), 0o755);
  chmodSync(usersDir, 0o755);
  chmodSync(usersFile, 0o644);
  chmodSync(mastersFile, 0o644);
  const ids = asRoot
    ? { mailUid: 'nobody', mailGid: 'nogroup', internal: 'dovecot', login: 'dovenull' }
    : { mailUid: whoami('-un'), mailGid: whoami('-gn'), internal: whoami('-un'), login: whoami('-un') };
  if (asRoot) {
    // As root, mail processes run as nobody:nogroup (Dovecot refuses uid 0 for mail access), so the
    // mail tree and homes must belong to them; a caller's existing tree is handed over too.
    chmodSync(mailRoot, 0o755);
    spawnSync('chown', ['-R', `${ids.mailUid}:${ids.mailGid}`, mailRoot, join(dir, 'home')]);
  }

  const certFile = join(dir, 'etc', 'cert.pem');
  if (opts.tls) makeSelfSignedCert(certFile, join(dir, 'etc', 'key.pem'));

  const tries = opts.port === undefined ? 5 : 1;
  let lastErr;
  for (let attempt = 0; attempt < tries; attempt++) {
    const port = opts.port ?? (await freePort());
    const tlsPort = opts.tls ? await freePort() : 0;
    const conf = join(dir, 'etc', 'dovecot.conf');
    writeFileSync(
      conf,
      renderConfig({
        dir,
        port,
        ids,
        separator,
        mailLocation,
        usersFile,
        usersDir,
        mastersFile,
        logFile,
        asRoot,
        authMechanisms: opts.authMechanisms ?? 'plain login',
        auto: opts.autoSpecialUse === false ? 'no' : 'subscribe',
        tls: opts.tls ? { port: tlsPort, cert: certFile, key: join(dir, 'etc', 'key.pem') } : undefined,
      }),
    );
    writeFileSync(logFile, '');
    const check = spawnSync(doveconf, ['-c', conf, '-n'], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`dovecot config rejected: ${check.stderr.trim()}`);
    // -F: stay in the foreground, so this process owns the master PID and sees it exit.
    const child = spawn(dovecot, ['-F', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise((res) => child.once('exit', (code, sig) => res({ code, sig })));
    try {
      await waitForGreeting(port, exited, opts.startTimeoutMs ?? 15_000);
    } catch (err) {
      if (child.exitCode === null) child.kill('SIGKILL');
      const log = tail(logFile, 20);
      lastErr = new Error(
        `dovecot did not start on ${HOST}:${port}: ${err.message}` +
          (stderr.trim() ? `\nstderr: ${stderr.trim()}` : '') +
          (log ? `\nlast log lines:\n${log}` : ''),
      );
      // Another process took the port between the probe and the bind: try another one.
      if (/in use/i.test(stderr + log)) continue;
      throw lastErr;
    }
    child.stderr.removeAllListeners('data');
    child.stderr.resume();
    // Never leave an orphaned server behind when this process ends without calling stop().
    const onExit = () => child.kill('SIGTERM');
    process.once('exit', onExit);
    exited.then(() => process.off('exit', onExit));
    return instance({
      ...{
        dir,
        ownDir: opts.dir === undefined,
        port,
        child,
        exited,
        masterUser,
        masterPassword,
        userPassword,
      },
      ...{ usersFile, usersDir, logFile, mailLocation, conf },
      ...(opts.tls ? { tlsPort, certFile } : {}),
    });
  }
  throw lastErr;
}

function instance(o) {
  const { dir, ownDir, port, child, exited, masterUser, masterPassword, userPassword } = o;
  const { usersFile, usersDir, logFile, mailLocation, conf, tlsPort, certFile } = o;
  return {
    host: HOST,
    port,
    /** Implicit-TLS (imaps) port, when started with tls. */
    tlsPort,
    /** The self-signed certificate (PEM), when started with tls: trust it as a CA to verify. */
    certFile,
    pid: child.pid,
    dir,
    conf,
    logFile,
    usersFile,
    usersDir,
    masterUser,
    masterPassword,
    userPassword,
    /** Adds a user (usable at once); returns its name and password. Replaces an earlier password. */
    addUser(name, password = userPassword) {
      addPasswdUser(usersDir, name, password);
      return { user: name, password };
    },
    /** The Maildir directory of a user, per the mail_location template. */
    maildirOf(user) {
      return maildirFor(mailLocation, user);
    },
    /** Stops the master process (TERM, then KILL after 5 s); removes the dir if it made it. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      // A directory this call created is removed (keep it with MAILARK_TEST_KEEP=1); a given one stays.
      if (ownDir && env.MAILARK_TEST_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Adds `name:{PLAIN}password` for Dovecot, usable from any process (tests get the path via inject()).
 * `target` is either a per-user directory (passdb args .../%u: one file per user, visible at once) or
 * a single passwd-file: then the line is appended and this call blocks until the next wall-clock
 * second, because Dovecot re-reads a changed passwd-file at most once per second.
 */
export function addPasswdUser(target, name, password) {
  if (/[:\n\r/]/.test(name) || name.startsWith('.') || /[:\n\r]/.test(password)) {
    throw new Error(`invalid user name or password for ${JSON.stringify(name)}`);
  }
  if (statSync(target).isDirectory()) {
    const file = join(target, name);
    writeFileSync(`${file}.tmp`, passwdLine(name, password), { mode: 0o644 });
    renameSync(`${file}.tmp`, file); // atomic: Dovecot never reads half a line
    return;
  }
  const existing = readFileSync(target, 'utf8').split('\n');
  if (existing.some((l) => l.startsWith(`${name}:`))) return;
  appendFileSync(target, passwdLine(name, password));
  const wait = 1100 - (Date.now() % 1000);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
}

/** The Maildir of `user` for a mail_location such as "maildir:/r/%d/%n/Maildir:LAYOUT=fs". */
export function maildirFor(mailLocation, user) {
  const at = user.lastIndexOf('@');
  const n = at < 0 ? user : user.slice(0, at);
  const d = at < 0 ? '' : user.slice(at + 1);
  const path = mailLocation.replace(/^maildir:/, '').split(':')[0] ?? '';
  return path.replaceAll('%n', n).replaceAll('%d', d).replaceAll('%u', user);
}

function passwdLine(name, password) {
  // user:password:uid:gid:(gecos):home:(shell):extra — uid/gid/home come from userdb defaults.
  return `${name}:{PLAIN}${password}::::::\n`;
}

function renderConfig({
  dir,
  port,
  ids,
  separator,
  mailLocation,
  usersFile,
  usersDir,
  mastersFile,
  logFile,
  asRoot,
  authMechanisms,
  auto,
  tls,
}) {
  return `# private mailark test instance, generated by scripts/lib/dovecot.mjs${asRoot ? '' : ' (rootless)'}
instance_name = mailark-${port}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${logFile}
info_log_path = ${logFile}
debug_log_path = ${logFile}
protocols = imap
listen = ${HOST}
${tls ? `ssl = yes\nssl_cert = <${tls.cert}\nssl_key = <${tls.key}` : 'ssl = no'}
disable_plaintext_auth = no
auth_mechanisms = ${authMechanisms}
auth_master_user_separator = *
auth_verbose = yes
# tests fail logins on purpose: no failure delay and no auth penalty (see service anvil below)
auth_failure_delay = 0
default_internal_user = ${ids.internal}
default_login_user = ${ids.login}
first_valid_uid = 1
mail_uid = ${ids.mailUid}
mail_gid = ${ids.mailGid}
mail_location = ${mailLocation}
mail_home = ${dir}/home/%d/%n
mailbox_list_index = yes
mail_max_userip_connections = 500
protocol imap {
  mail_max_userip_connections = 500
}
service imap-login {
  inet_listener imap {
    address = ${HOST}
    port = ${port}
  }
  inet_listener imaps {
    address = ${HOST}
    port = ${tls ? tls.port : 0}
  }
}
service imap {
  process_limit = 1024
}
service anvil {
  # mode 0 disables the growing delay after failed logins (Dovecot's documented switch)
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
# master users first: "user*admin" or SASL PLAIN authzid=user authcid=admin
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n ${mastersFile}
  master = yes
  # the target user must exist in the normal passdb below (an unknown user is refused)
  pass = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${usersFile}
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${usersDir}/%u
}
userdb {
  driver = passwd-file
  args = username_format=%u ${usersFile}
  default_fields = uid=${ids.mailUid} gid=${ids.mailGid}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${usersDir}/%u
  default_fields = uid=${ids.mailUid} gid=${ids.mailGid}
}
namespace inbox {
  inbox = yes
  separator = ${separator}
  prefix =
  mailbox Drafts {
    special_use = \\Drafts
    auto = ${auto}
  }
  mailbox Sent {
    special_use = \\Sent
    auto = ${auto}
  }
  mailbox Trash {
    special_use = \\Trash
    auto = ${auto}
  }
  mailbox Junk {
    special_use = \\Junk
    auto = ${auto}
  }
  mailbox Archive {
    special_use = \\Archive
    auto = ${auto}
  }
}
`;
}

/** A throwaway EC key and self-signed certificate for localhost / 127.0.0.1 (openssl ships with dovecot-core). */
function makeSelfSignedCert(certFile, keyFile) {
  const r = spawnSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', keyFile, '-out', certFile, '-days', '7', '-subj', '/CN=localhost'],
      ...['-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl could not make a test certificate: ${r.stderr || r.error}`);
  chmodSync(keyFile, 0o600);
}

/** Waits until the port answers "* OK" (the IMAP greeting, RFC 3501 §7.1.1). */
async function waitForGreeting(port, exited, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let died;
  exited.then((e) => {
    died = e;
  });
  while (Date.now() < deadline) {
    if (died) throw new Error(`dovecot exited (code ${died.code}, signal ${died.sig})`);
    if (await greets(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no IMAP greeting within ${timeoutMs} ms`);
}

function greets(port) {
  return new Promise((res) => {
    const s = net.connect({ host: HOST, port });
    let buf = '';
    const done = (ok) => {
      s.destroy();
      res(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.on('error', () => done(false));
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) done(buf.startsWith('* OK'));
    });
  });
}

/** A port that was free a moment ago (bind :0, read, close). */
export function freePort() {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once('error', rej);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      srv.close(() => res(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** The dovecot binary: PATH first, then the sbin directories a non-root PATH may lack. */
function findBinary(name) {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  return ['/usr/sbin', '/usr/local/sbin'].map((d) => join(d, name)).find((p) => existsSync(p));
}

function whoami(flag) {
  return spawnSync('id', [flag], { encoding: 'utf8' }).stdout.trim();
}

function tail(file, n) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

function range(n) {
  return Array.from({ length: n }, (_, i) => i + 1);
}
