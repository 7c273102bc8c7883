// The token table (issue 10): every way a router or a proxy may normalise a path, applied to every kind of
// route (reads, the hijacked CSV export, the WebSocket, writes). test/api/guard.test.ts runs it through
// app.inject, test/faults/security.test.ts against a real `serve`; both with the same rows from here.

import { connect } from 'node:net';

/** One request a client without the token tries. */
export interface Attempt {
  method: string;
  /** The request target exactly as sent (path and query). */
  target: string;
  body?: unknown;
  /** What the table row is, for the test's name. */
  label: string;
}

const hex = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** Path spellings: each takes '/api/…' (without the query) and respells it. */
export const SPELLINGS: ReadonlyArray<readonly [string, (p: string) => string]> = [
  ['as is', (p) => p],
  ['percent-encoded letter in /api', (p) => p.replace('/api', `/${hex('a')}pi`)],
  ['percent-encoded slash after /api', (p) => p.replace('/api/', '/api%2F')],
  ['percent-encoded slash, lower case', (p) => p.replace('/api/', '/api%2f')],
  ['percent-encoded first letter after /api/', (p) => p.replace(/^\/api\/(.)/, (_m, c: string) => `/api/${hex(c)}`)],
  ['every character percent-encoded', (p) => p.split('/').map((seg) => [...seg].map(hex).join('')).join('/')],
  ['leading double slash', (p) => `/${p}`],
  ['inner double slash', (p) => p.replace('/api/', '/api//')],
  ['dot-dot segment', (p) => `/x/..${p}`],
  ['dot segment', (p) => `/.${p}`],
  ['encoded dot-dot segment', (p) => `/x/%2e%2e${p}`],
  ['encoded dot segment', (p) => `/%2E${p}`],
  ['upper case', (p) => p.replace('/api', '/API')],
  ['trailing slash', (p) => `${p}/`],
  [';params on /api', (p) => p.replace('/api', '/api;x=1')],
  [';params at the end', (p) => `${p};x=1`],
  ['backslash', (p) => p.replace('/api/', '/api\\')],
  ['encoded backslash', (p) => p.replace('/api/', '/api%5C')],
  ['trailing encoded NUL', (p) => `${p}%00`],
  ['fragment', (p) => `${p}#frag`],
];

/** Query additions a client might hope slips through: empty, wrong or repeated tokens. */
export const QUERIES: readonly string[] = ['', 'token=', 'token=wrong-token-wrong-token', 'token=a&token=b', 'x=/api/../docs'];

const addQuery = (query: string, extra: string) => [query, extra].filter((s) => s !== '').join('&');

/**
 * The canonical routes, one of each kind, for `device` and a time range ending at `toMs`; the writes send
 * `calibration` (the device's own, so a write that got through would be valid and answer 200).
 */
export function routes(device: string, toMs: number, calibration: object): Attempt[] {
  const range = `device=${device}&from=${toMs - 60_000}&to=${toMs}`;
  const reads = [
    '/api/devices',
    `/api/devices/${device}`,
    `/api/devices/${device}/energy?tz=UTC`,
    `/api/devices/${device}/calibration`,
    `/api/history?${range}&points=10`,
    `/api/export.csv?${range}&interval=1s&tz=UTC`,
    `/api/export/estimate?${range}&interval=1s&tz=UTC`,
    '/api/live',
  ];
  return [
    ...reads.flatMap((target) => ['GET', 'HEAD', 'OPTIONS'].map((method) => ({ method, target, label: `${method} ${target}` }))),
    { method: 'PUT', target: `/api/devices/${device}/calibration`, body: calibration, label: 'PUT calibration' },
    { method: 'POST', target: `/api/devices/${device}/captures`, body: { pairs: 64 }, label: 'POST captures' },
  ];
}

/** Every route in every spelling with every query addition of `queries`. */
export function attempts(device: string, toMs: number, calibration: object, queries: readonly string[] = QUERIES): Attempt[] {
  const out: Attempt[] = [];
  for (const r of routes(device, toMs, calibration)) {
    const [path, query = ''] = r.target.split('?') as [string, string?];
    for (const [name, spell] of SPELLINGS) {
      for (const extra of queries) {
        const q = addQuery(query, extra);
        out.push({ ...r, target: `${spell(path)}${q === '' ? '' : `?${q}`}`, label: `${r.label} | ${name} | ?${extra}` });
      }
    }
  }
  return out;
}

/** Absolute-form request lines (RFC 9112 §3.2.2), which only a raw socket sends. */
export function absoluteForms(authority: string, device: string): string[] {
  return [
    `http://${authority}/api/devices`,
    `HTTP://${authority}/api/devices`,
    `http://${authority}/%61pi/devices`,
    `http://${authority}//api/devices`,
    `http://${authority}/x/../api/devices/${device}/energy`,
    `http://${authority}/API/devices`,
    `http://evil.example/api/devices`,
  ];
}

export interface RawResponse {
  status: number;
  headers: string;
  body: string;
}

/**
 * Sends `request` as written over a fresh TCP connection and reads the answer until the server closes it
 * (`Connection: close`). The socket is not half-closed after the request: Node's server then aborts a request
 * whose answer is not written yet, and a slow answer would be lost.
 */
export function rawHttp(port: number, request: string, host = '127.0.0.1'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => socket.write(request));
    const chunks: Buffer[] = [];
    socket.on('data', (b: Buffer) => {
      chunks.push(b);
      // An accepted WebSocket upgrade never closes by itself: its head is the whole answer.
      if (/^HTTP\/1\.1 101 [^]*\r\n\r\n/.test(Buffer.concat(chunks).toString('latin1'))) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({ status: status ? Number(status[1]) : 0, headers: head, body: split < 0 ? '' : text.slice(split + 4) });
    });
  });
}

/** A request with the given header lines and JSON body (Content-Length, and `Connection: close` unless given). */
export function rawRequest(port: number, method: string, target: string, headerLines: readonly string[], body?: unknown): Promise<RawResponse> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const lines = [...headerLines, ...(body === undefined ? [] : ['Content-Type: application/json', `Content-Length: ${Buffer.byteLength(text)}`])];
  if (!lines.some((l) => /^connection:/i.test(l))) lines.push('Connection: close');
  return rawHttp(port, `${method} ${target} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${text}`);
}

/** The header lines of a WebSocket upgrade request. */
export const UPGRADE: readonly string[] = ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'];

export function rawGet(port: number, target: string, headerLines: readonly string[]): Promise<RawResponse> {
  return rawRequest(port, 'GET', target, headerLines);
}

/** Text that would only be in a response carrying data (the device id, a CSV header, a window). */
export function leaksData(body: string, device: string): boolean {
  return body.includes(device) || /timestamp,|"devices"|"total_nwh"|"calibration"|"capture_id"/.test(body);
}
