/**
 * A built command (the CLI or the agent) run as a child process by integration tests that must kill
 * or signal it: its stdout, stderr, JSON lines and exit code, collected as they come.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface Child {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  /** stdout lines so far: JSON lines parsed, other non-empty lines (text, pretty-printed JSON) as { text }. */
  lines: Array<Record<string, unknown>>;
  /** The exit code, once stdout and stderr are drained ('close', not 'exit', which can come first). */
  exit: Promise<number | null>;
}

/** Runs `node script ...args` with exactly `env` (plus PATH): nothing of the test runner leaks in. */
export function runNode(script: string, args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, [script, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const child: Child = {
    proc,
    stdout: '',
    stderr: '',
    lines: [],
    exit: new Promise((r) => proc.on('close', (code) => r(code))),
  };
  let pending = '';
  proc.stdout?.on('data', (d: Buffer) => {
    const s = d.toString();
    child.stdout += s;
    pending += s;
    for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      if (line.trim() === '') continue;
      child.lines.push(jsonLine(line) ?? { text: line });
    }
  });
  proc.stderr?.on('data', (d: Buffer) => {
    child.stderr += d.toString();
  });
  return child;
}

/** The object a JSON line holds, or undefined (a line of pretty-printed JSON, or text, is not one). */
function jsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Polls `cond` every 50 ms; fails naming `what` on timeout or when the child exits first. */
export async function waitFor(
  what: string,
  cond: () => boolean,
  child: Child,
  timeoutMs = 120_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until || child.proc.exitCode !== null) {
      throw new Error(
        `waiting for ${what}: ${child.proc.exitCode === null ? 'timed out' : `the process exited ${child.proc.exitCode}`}\n${child.stderr}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
