// The fault suite's one way to run the host: the real `crabwatt serve` as a child process, exactly as a
// user starts it (the bin with its shebang environment), on a free loopback port, with its own database
// in a temporary folder. Attacks and faults go through HTTP, signals and the filesystem, never through
// the process's internals.
//
// Nothing here waits on a wall-clock deadline to decide a result: readiness is the line serve prints,
// "enough windows" is a count read back from the API, and an early exit rejects the wait at once.

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../server/bin/crabwatt.mjs', import.meta.url));

export interface ServeProcess {
  /** http://127.0.0.1:PORT the API and dashboard listen on. */
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** Everything serve wrote to stderr (its log) so far. */
  stderr(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** SIGINT, as Ctrl-C: serve flushes and exits; resolves with its exit code. */
  stop(): Promise<number | string>;
  /** SIGKILL: no flush, no cleanup. */
  kill9(): Promise<void>;
}

export interface StartOptions {
  /** Arguments after `serve`; `--listen` defaults to a free loopback port. */
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const READY = /dashboard and API on (http:\/\/\S+)/;

/** Runs a crabwatt CLI command to its end, as a user would (for commands other than serve). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts `crabwatt serve` and resolves once it listens; rejects with its log if it exits first. */
export function startServe(opts: StartOptions): Promise<ServeProcess> {
  const args = opts.args.includes('--listen') ? opts.args : [...opts.args, '--listen', '127.0.0.1:0'];
  // The bin is run by node directly (not through its shebang) so the test controls the environment;
  // the shebang's own environment is covered by test/cli/node-flags.test.ts.
  const child = spawn(process.execPath, [BIN, 'serve', ...args], {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  child.stdout.on('data', (b: Buffer) => (log += b.toString()));
  return new Promise<ServeProcess>((resolve, reject) => {
    child.stderr.on('data', (b: Buffer) => {
      log += b.toString();
      const m = READY.exec(log);
      if (m) {
        resolve({
          url: m[1]!,
          pid: child.pid!,
          child,
          stderr: () => log,
          exited,
          stop: () => {
            child.kill('SIGINT');
            return exited;
          },
          kill9: async () => {
            child.kill('SIGKILL');
            await exited;
          },
        });
      }
    });
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening:\n${log}`)));
  });
}

/** A temporary folder for one test's databases; remove() deletes it. */
export function scratchDir(prefix = 'crabwatt-fault-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** GET a JSON document from the server; throws with the status and body when it is not 200. */
export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${body}`);
  return JSON.parse(body) as T;
}

/**
 * Polls `probe` until it returns a value (not undefined). Each round yields to the event loop for
 * `pauseMs`; there is no deadline here — vitest's per-test timeout is the only backstop, so a slow,
 * loaded machine takes longer but decides the same way.
 */
export async function until<T>(probe: () => Promise<T | undefined>, pauseMs = 100): Promise<T> {
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}
