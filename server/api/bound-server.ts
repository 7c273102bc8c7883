// The HTTP server `serve` listens on, bound FIRST: an address in use or not of this machine must fail before the
// database is created or a device registered (a failed start changes nothing). Until the app is ready, requests
// get 503 "starting"; then fastify's handler takes over (buildApp's serverFactory hands it over).

import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { FastifyServerOptions } from 'fastify';

export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListenError';
  }
}

function starting(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' });
  res.end('crabwatt is starting; try again in a moment\n');
}

export class BoundServer {
  private appHandler: RequestListener | undefined;

  private constructor(readonly server: Server) {}

  /** Binds host:port (0: any free port); ListenError says what to change when it cannot. */
  static async bind(host: string, port: number): Promise<BoundServer> {
    const server = createServer(starting);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') reject(new ListenError(`${host}:${port} is in use: choose another with --listen HOST:PORT`));
        else if (err.code === 'EADDRNOTAVAIL') reject(new ListenError(`${host} is not an address of this machine: fix --listen`));
        else if (err.code === 'EACCES') reject(new ListenError(`no permission to listen on port ${port}: use a port above 1023`));
        else if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') reject(new ListenError(`${host} is not a known host name: fix --listen`));
        else reject(err);
      });
      server.listen(port, host, () => resolve());
    });
    return new BoundServer(server);
  }

  /** For buildApp: fastify's handler is kept here until open(). */
  readonly serverFactory: NonNullable<FastifyServerOptions['serverFactory']> = (handler) => {
    this.appHandler = handler as RequestListener;
    return this.server;
  };

  /** The app is ready: it answers from now on. */
  open(): void {
    if (!this.appHandler) throw new Error('BoundServer.open() before buildApp took the server');
    this.server.off('request', starting);
    this.server.on('request', this.appHandler);
  }

  /** http://host:port as a browser would write it. */
  get url(): string {
    const a = this.server.address();
    if (a === null || typeof a === 'string') throw new Error('the server is not listening on TCP');
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** Stops listening and cuts open connections (a long export must not hold up Ctrl-C). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
