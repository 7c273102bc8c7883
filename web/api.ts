// The dashboard's view of the HTTP API: typed fetch helpers that carry the token (when the page was
// opened with ?token=…) and turn an error reply into an Error with the server's message.

export interface DeviceJson {
  id: string;
  name: string;
  kind: 'hardware' | 'simulated' | 'rtl';
  path: string | null;
  state: 'connected' | 'disconnected' | 'reconnecting' | 'bootloader' | 'absent';
  detail: string;
  sample_rate_hz: number;
  counters: {
    frames: number;
    crc_errors: number;
    seq_gaps: number;
    resets: number;
    reconnects: number;
    frames_per_s: number;
  };
}

export interface WindowMsg {
  type: 'window';
  device: string;
  t_ms: number;
  samples: number;
  vrms: number;
  irms: number;
  p: number;
  s: number;
  pf: number | null;
  n: number;
  freq_hz: number | null;
  energy_nwh: string;
  flags: number;
  received_at_ms: number;
}
export interface LinkMsg {
  type: 'link';
  device: string;
  state: DeviceJson['state'];
  detail: string;
}
export interface DevicesMsg {
  type: 'devices';
  t_ms: number;
  devices: DeviceJson[];
}
export type LiveMsg = WindowMsg | LinkMsg | DevicesMsg;

export interface Buckets {
  mean: (number | null)[];
  min: (number | null)[];
  max: (number | null)[];
}
export interface HistoryJson {
  device: string;
  from: number;
  to: number;
  level: string;
  bucket_ms: number;
  t: number[];
  series: Record<string, Buckets>;
}
export interface EnergyJson {
  today_wh: number;
  total_wh: number;
  day_start: string;
}
export interface CaptureJson {
  id: number;
  state: 'pending' | 'complete' | 'failed';
  detail: string;
  sample_rate_hz: number;
  kv: number;
  ki: number;
  /** Samples between two pairs: pair k is sample first_index + k·decimation. */
  decimation: number;
  first_index: number;
  trigger_index: number;
  /** Position of the trigger pair in v / i. */
  trigger_offset: number;
  v: number[];
  i: number[];
}

const TOKEN_KEY = 'crabwatt.token';

/** A token given once in the address bar is kept for the tab and removed from the visible URL. */
export function initToken(): void {
  const url = new URL(location.href);
  const t = url.searchParams.get('token');
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    url.searchParams.delete('token');
    history.replaceState(null, '', url);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function withToken(path: string): string {
  const t = token();
  if (!t) return path;
  return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(t)}`;
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await request(path, init);
  return (await res.json()) as T;
}

export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const t = token();
  if (t) headers.set('authorization', `Bearer ${t}`);
  const res = await fetch(path, { ...init, headers });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { message?: string };
      if (body.message) message = body.message;
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(message);
  }
  return res;
}

export function query(params: Record<string, string | number>): string {
  return new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();
}
