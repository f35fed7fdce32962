// Runs a command as a child process and measures wall time and peak RSS; returns its parsed --json output.
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const HOOK = new URL('./rss-hook.mjs', import.meta.url).href;

/**
 * Runs an installed bin as a user's shell would (executed, so its #! line and the environment it sets
 * apply), returns { ms, maxRssMiB, cpuMs, code, stdout, stderr, json }.
 */
export function measureBin(bin, args, env) {
  const out = join(mkdtempSync(join(tmpdir(), 'bench-rss-')), 'rss.json');
  const nodeOptions = [process.env.NODE_OPTIONS, `--import=${HOOK}`].filter(Boolean).join(' ');
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(bin, args, {
      env: { ...process.env, ...env, NODE_OPTIONS: nodeOptions, MAILARK_BENCH_USAGE_OUT: out },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      let maxRssMiB = Number.NaN;
      let cpuMs = Number.NaN;
      try {
        const usage = JSON.parse(readFileSync(out, 'utf8'));
        maxRssMiB = usage.maxRssKiB / 1024;
        cpuMs = usage.cpuMs ?? Number.NaN;
      } catch {}
      rmSync(dirname(out), { recursive: true, force: true });
      let json;
      try {
        json = JSON.parse(stdout);
      } catch {}
      resolve({ ms, maxRssMiB, cpuMs, code, stdout, stderr, json });
    });
  });
}

/** Runs any command, returns { ms, code, stderr }. */
export function measureCommand(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - t0, code, stderr }));
  });
}

/** Paths of the files under `dir`, at any depth. */
export function* filesUnder(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* filesUnder(p);
    else if (e.isFile()) yield p;
  }
}

/** Object count and bytes under a directory (a local repository). */
export function treeSize(dir) {
  let files = 0;
  let bytes = 0;
  for (const p of filesUnder(dir)) {
    files++;
    bytes += statSync(p).size;
  }
  return { files, bytes };
}

/** Busy CPU milliseconds of the whole machine so far (all processes, all cores), or NaN off Linux. */
export function machineBusyMs() {
  try {
    const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal: busy is user, nice, system, irq and softirq
    // (steal is other guests' time on this VM's cores).
    const busy = f[0] + f[1] + f[2] + f[5] + f[6];
    return (busy * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return Number.NaN;
  }
}

/**
 * Reads every file under the given directories once, so the step measured next finds them in the page
 * cache. Why: this VM pages out file pages left idle for about a minute (DAMON reclaim), so without it
 * a step read from disk or from memory depending on what ran before it (a raw fetch measured 4.6 s in
 * one run and 24 s in another). Every step that reads mail or the repository is warmed the same way:
 * reference and mailark alike measure CPU and protocol, not the disk.
 */
export function warmFiles(...dirs) {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const p of filesUnder(d)) {
      const fd = openSync(p, 'r');
      try {
        while (readSync(fd, buf, 0, buf.length, null) > 0);
      } finally {
        closeSync(fd);
      }
    }
  }
}
