// Where the server listens, under which names, and whether it needs a token. Only the CLI's `serve`
// listens; it calls resolveListen() with `--listen`, `--allow-host`, the token options and the environment,
// then app.listen({host, port}); guard.ts enforces the token and the names.
//
// Rule (issue 3): loopback by default; listening on any other address requires a token, because the
// API can rewrite calibration and the stream reveals a household's consumption. The token comes from a file
// or the environment (issue 10): a command-line argument is readable by every user of the machine (ps).

import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;
export const TOKEN_ENV = 'CRABWATT_TOKEN';
/** Shorter tokens are guessable; 16 characters of anything is the floor. */
export const MIN_TOKEN_CHARS = 16;

export class ListenConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListenConfigError';
  }
}

export interface ListenConfig {
  host: string;
  port: number;
  token: string | undefined;
  /** Names (NAME or NAME:PORT) the server answers to besides its address: --allow-host and a --listen name. */
  allowHosts: string[];
  /** Things the user should know but that do not stop the server (a token file others may read). */
  warnings: string[];
}

/** A Host header's or Origin's authority: lower-case name without brackets or trailing dot, and port. */
export interface Authority {
  name: string;
  /** undefined: any port (an --allow-host NAME without one). */
  port: number | undefined;
}

/** 'Name:8080', '[::1]:80', 'name' → its Authority, the port `defaultPort` when not given; undefined if malformed. */
export function parseAuthority(text: string, defaultPort: number | undefined): Authority | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]/@\s]+))(?::(\d{1,5}))?$/i.exec(text);
  if (!m) return undefined;
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port !== undefined && port > 65535) return undefined;
  return { name: (m[1] ?? m[2]!).toLowerCase().replace(/\.$/, ''), port };
}

export function parseAllowHost(spec: string): Authority {
  const a = parseAuthority(spec.trim(), undefined);
  if (a === undefined) throw new ListenConfigError(`--allow-host '${spec}': give a host name, NAME or NAME:PORT (e.g. crabwatt.example.org)`);
  return a;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** Parses HOST:PORT, [v6]:PORT or :PORT (loopback); port 0 means any free port. */
export function parseListen(spec: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(spec.trim());
  if (!m) throw new ListenConfigError(`--listen must be HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080); got '${spec}'`);
  const host = m[1] ?? (m[2] === '' ? DEFAULT_HOST : m[2]!);
  const port = Number(m[3]);
  // Port 0 asks the system for a free port (tests, or several instances side by side).
  if (port > 65535) throw new ListenConfigError(`port ${port} is outside 0..65535`);
  return { host, port };
}

/**
 * The token in FILE: its content without one trailing newline. Refused when other users may read it (the
 * point of a file is that they cannot); a file the group may read is allowed with a warning.
 */
export function readTokenFile(path: string): { token: string; warnings: string[] } {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a folder' : e.message;
    throw new ListenConfigError(`--token-file ${path}: ${why}`);
  }
  if (mode & 0o004) {
    throw new ListenConfigError(`--token-file ${path} can be read by every user of this machine: \`chmod 600 ${path}\` (or 640 for a group)`);
  }
  const warnings = mode & 0o040 ? [`--token-file ${path} can be read by its group; \`chmod 600 ${path}\` keeps it to its owner`] : [];
  return { token: text.replace(/\r?\n$/, ''), warnings };
}

export function resolveListen(opts: {
  listen?: string | undefined;
  token?: string | undefined;
  tokenFile?: string | undefined;
  allowHosts?: readonly string[] | undefined;
  env?: NodeJS.ProcessEnv;
}): ListenConfig {
  const { host, port } = opts.listen ? parseListen(opts.listen) : { host: DEFAULT_HOST, port: DEFAULT_PORT };
  if (opts.token !== undefined && opts.tokenFile !== undefined) {
    throw new ListenConfigError('give the token once: --token-file FILE (or --token T), not both');
  }
  const warnings: string[] = [];
  let token = opts.token;
  let source = '--token';
  if (opts.tokenFile !== undefined) {
    const read = readTokenFile(opts.tokenFile);
    token = read.token;
    warnings.push(...read.warnings);
    source = `--token-file ${opts.tokenFile}`;
  } else if (token === undefined && opts.env?.[TOKEN_ENV] !== undefined) {
    token = opts.env[TOKEN_ENV];
    source = TOKEN_ENV;
  }
  if (token !== undefined) checkToken(token, source);
  if (!isLoopback(host) && token === undefined) {
    throw new ListenConfigError(
      `listening on ${host} exposes the API beyond this machine: give --token-file FILE or set ${TOKEN_ENV} ` +
        `(clients then send 'Authorization: Bearer T', or ?token=T for the dashboard and WebSocket)`,
    );
  }
  const allowHosts = [...(opts.allowHosts ?? [])];
  for (const a of allowHosts) parseAllowHost(a);
  // Listening on a name (not an address) means clients use that name.
  if (isIP(host.replace(/^\[|\]$/g, '')) === 0 && !isLoopback(host)) allowHosts.push(host);
  return { host, port, token, allowHosts, warnings };
}

function checkToken(token: string, source: string): void {
  if (token.length < MIN_TOKEN_CHARS) {
    throw new ListenConfigError(`the token (${source}) must be at least ${MIN_TOKEN_CHARS} characters (e.g. \`openssl rand -hex 16\`)`);
  }
  // Clients send it in a header, which trims spaces and cannot carry a line break: such a token could never match.
  if (/[\s\x00-\x1f\x7f]/.test(token)) {
    throw new ListenConfigError(`the token (${source}) contains spaces, line breaks or control characters: use letters, digits and punctuation (e.g. \`openssl rand -hex 16\`)`);
  }
}
