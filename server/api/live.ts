// Fan-out of live windows and link events to WebSocket clients.
//
// Ingest emits synchronously into broadcast(); nothing here may ever wait on a client. Each message is
// serialised once and handed to every socket; a socket whose unsent bytes exceed the soft limit misses
// messages (it is behind; newer windows are worth more than old ones) and one past the hard limit is
// terminated, so a stalled or vanished browser costs at most hardLimitBytes of memory.

import type { WebSocket } from 'ws';
import type { DeviceDirectory, LinkEvent, LiveSource, LiveWindow } from './deps.ts';
import { deviceJson, linkJson, windowJson } from './json.ts';

export interface LiveHubOptions {
  softLimitBytes?: number;
  hardLimitBytes?: number;
  /** How often the device list with its counters is pushed (the dashboard's device panel). */
  devicesIntervalMs?: number;
}

interface Client {
  socket: WebSocket;
  device: string | undefined;
}

const OPEN = 1;

export class LiveHub {
  readonly stats = { messages: 0, dropped: 0, terminated: 0 };
  private readonly clients = new Set<Client>();
  private readonly softLimit: number;
  private readonly hardLimit: number;
  private readonly timer: NodeJS.Timeout;
  private readonly onWindow = (w: LiveWindow) => this.broadcast(w.device, JSON.stringify(windowJson(w)));
  private readonly onLink = (e: LinkEvent) => this.broadcast(e.device, JSON.stringify(linkJson(e)));

  constructor(
    private readonly source: LiveSource,
    private readonly devices: DeviceDirectory,
    opts: LiveHubOptions = {},
  ) {
    this.softLimit = opts.softLimitBytes ?? 256 * 1024;
    this.hardLimit = opts.hardLimitBytes ?? 4 * 1024 * 1024;
    source.on('window', this.onWindow);
    source.on('link', this.onLink);
    this.timer = setInterval(() => this.pushDevices(), opts.devicesIntervalMs ?? 1000);
    this.timer.unref();
  }

  get clientCount(): number {
    return this.clients.size;
  }

  add(socket: WebSocket, device: string | undefined): void {
    const client: Client = { socket, device };
    this.clients.add(client);
    const forget = () => this.clients.delete(client);
    socket.on('close', forget);
    socket.on('error', forget);
    // Clients only listen; anything they send is ignored (and bounded by the server's maxPayload).
    this.sendTo(client, JSON.stringify(this.devicesMessage()));
  }

  close(): void {
    clearInterval(this.timer);
    this.source.off('window', this.onWindow);
    this.source.off('link', this.onLink);
    for (const c of this.clients) c.socket.close(1001, 'server shutting down');
    this.clients.clear();
  }

  private devicesMessage() {
    return { type: 'devices' as const, t_ms: Date.now(), devices: this.devices.list().map(deviceJson) };
  }

  private pushDevices(): void {
    if (this.clients.size === 0) return;
    const text = JSON.stringify(this.devicesMessage());
    for (const c of this.clients) this.sendTo(c, text);
  }

  private broadcast(device: string, text: string): void {
    for (const c of this.clients) {
      if (c.device === undefined || c.device === device) this.sendTo(c, text);
    }
  }

  private sendTo(c: Client, text: string): void {
    const s = c.socket;
    if (s.readyState !== OPEN) return;
    const backlog = s.bufferedAmount;
    if (backlog > this.hardLimit) {
      this.stats.terminated++;
      this.clients.delete(c);
      s.terminate();
      return;
    }
    if (backlog > this.softLimit) {
      this.stats.dropped++;
      return;
    }
    this.stats.messages++;
    s.send(text);
  }
}
