// Who may use the server: the Host and Origin a request names, then the token.
//
// Every decision is made from what the router resolved (the route's own config), never from the request's
// URL text: a router decodes, a proxy normalises, and any check that reads the raw path can be walked
// around by spelling the path another way (`/%61pi/devices` was 200 while `/api/devices` was 401, issue 10).
// So a route is public only when it says so (`config: PUBLIC`: the dashboard shell, its assets and the
// OpenAPI pages, none of which carry data); every other route, and every request the router does not match,
// needs the token when one is set.
//
// Host and Origin (DNS rebinding, cross-site reads of a loopback server): a browser lets any page send
// requests to 127.0.0.1:8080, and a rebinding page even reads the answers as its own origin. Neither can
// choose the Host header the browser sends (it is the page's own name) nor the Origin, so a request is
// served only when both name the server as it listens: its address and port (for loopback also localhost,
// 127.0.0.1 and [::1]; for a wildcard address any IP literal and this machine's name), or a name given with
// `--allow-host`. Clients that are not browsers send no Origin and keep working.

import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP, type AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isLoopback, parseAllowHost, parseAuthority, type Authority } from './listen.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without the token (the route carries no data). Host and Origin are checked all the same. */
    public?: boolean;
  }
}

/** Route config of a route anyone who can reach the server may read. */
export const PUBLIC = { public: true } as const;

export interface GuardOptions {
  /** When set, every route that is not PUBLIC needs it: 'Authorization: Bearer T' or ?token=T. */
  token?: string | undefined;
  /** Names (or NAME:PORT) a client may reach the server under besides its address, e.g. behind a proxy. */
  allowHosts?: readonly string[] | undefined;
}

/**
 * Adds the check as an onRequest hook on `app`. Call it after the WebSocket plugin is registered: that
 * plugin's own onRequest hook must run first to mark upgrade requests, or a refused upgrade's socket is
 * never destroyed and keeps the server from closing.
 */
export function installGuard(app: FastifyInstance, opts: GuardOptions): void {
  const expected = opts.token === undefined ? undefined : digest(opts.token);
  const extra = (opts.allowHosts ?? []).map(parseAllowHost);
  const self = hostname().toLowerCase();
  let served: Served | undefined; // known once listening, fixed from then on
  app.addHook('onRequest', async (req, reply) => {
    if (served === undefined) {
      const a = app.server.address();
      if (a !== null && typeof a === 'object') served = { ...a, self };
    }
    // Not listening: the request came through app.inject, in this process, not from any browser.
    if (served !== undefined) {
      const refusal = hostRefusal(req, served, extra);
      if (refusal !== undefined) return refuse(reply, 403, refusal);
    }
    if (expected === undefined || req.routeOptions.config.public === true) return;
    if (!tokenMatches(req, expected)) {
      reply.header('www-authenticate', 'Bearer');
      return refuse(reply, 401, "missing or wrong token: send 'Authorization: Bearer T' or ?token=T");
    }
  });
}

/** Runs `register` (e.g. of the OpenAPI pages' plugin) in a scope where every route added is PUBLIC. */
export async function registerPublic(app: FastifyInstance, register: (scope: FastifyInstance) => Promise<void>): Promise<void> {
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, ...PUBLIC };
    });
    await register(scope);
  });
}

function refuse(reply: FastifyReply, status: 401 | 403, message: string): FastifyReply {
  return reply.code(status).send({ statusCode: status, error: status === 401 ? 'Unauthorized' : 'Forbidden', message });
}

/** Where the server listens, and this machine's name. */
interface Served extends AddressInfo {
  self: string;
}

/** Whether a listening address answers to `name` without --allow-host. */
function servedName(served: Served, name: string): boolean {
  const a = served.address.toLowerCase();
  if (name === a) return true;
  if (isLoopback(a)) return name === 'localhost' || isLoopback(name);
  if (a === '0.0.0.0' || a === '::') {
    // Every interface: an IP literal cannot be rebound (rebinding needs a DNS name the attacker controls),
    // and this machine's own name is what a user on the LAN types.
    return isIP(name) !== 0 || name === 'localhost' || name === served.self || name === `${served.self}.local`;
  }
  return false;
}

function authorityAllowed(a: Authority, served: Served, extra: readonly Authority[]): boolean {
  if (extra.some((e) => e.name === a.name && (e.port === undefined || e.port === a.port))) return true;
  return a.port === served.port && servedName(served, a.name);
}

function describeServed(served: Served): string {
  const host = served.family === 'IPv6' ? `[${served.address}]` : served.address;
  return `${host}:${served.port}`;
}

/** Why the request's Host, absolute-form target or Origin does not name this server; undefined when they do. */
function hostRefusal(req: FastifyRequest, served: Served, extra: readonly Authority[]): string | undefined {
  const hint = (name: string) =>
    `this server is served as ${describeServed(served)}; if you reach it under '${name}', start serve with --allow-host ${name}`;
  const names: string[] = [];
  const host = req.headers.host;
  // HTTP/1.1 without Host is refused by Node itself; HTTP/1.0 may omit it, and no browser does.
  if (host !== undefined) names.push(host);
  // An absolute-form request line names the server itself, and RFC 9112 lets it override Host.
  const target = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(req.raw.url ?? '');
  if (target) names.push(target[1]!);
  for (const n of names) {
    const a = parseAuthority(n, 80);
    if (a === undefined || !authorityAllowed(a, served, extra)) return `Host '${n}' is not a name of this server: ${hint(a?.name ?? n)}`;
  }
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  const o = originAuthority(origin);
  if (o === undefined || !authorityAllowed(o, served, extra)) {
    return `requests from pages of another origin ('${origin}') are refused: ${hint(o?.name ?? origin)}`;
  }
  return undefined;
}

function originAuthority(origin: string): Authority | undefined {
  // 'null' (sandboxed frames, file: pages) and anything but http(s) is never this server.
  const m = /^(https?):\/\/(.+)$/i.exec(origin);
  if (!m) return undefined;
  return parseAuthority(m[2]!, m[1]!.toLowerCase() === 'https' ? 443 : 80);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function tokenMatches(req: FastifyRequest, expected: Buffer): boolean {
  const auth = req.headers.authorization;
  let given: string | undefined;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) given = auth.slice(7).trim();
  else {
    const q = req.query as Record<string, unknown> | undefined;
    if (q && typeof q.token === 'string') given = q.token;
  }
  // Comparing fixed-length digests keeps the check constant-time whatever the token's length.
  return given !== undefined && timingSafeEqual(digest(given), expected);
}
