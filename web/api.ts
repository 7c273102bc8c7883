// The dashboard's view of the HTTP API: typed fetch helpers that carry the token (when the page was
// opened with ?token=…) and turn an error reply into an Error with the server's message.

// The JSON shapes are the server's own TypeBox schemas (server/api/schemas.ts), so a server change that
// the dashboard does not follow fails the type check instead of the page. The imports are type-only:
// esbuild erases them, and the bundle carries neither TypeBox nor server code (test/web/api.test.ts).
import type { Static } from '@sinclair/typebox';
import type * as S from '../server/api/schemas.ts';
import type * as E from '../server/api/energy-schemas.ts';
import type * as Ev from '../server/api/events.ts';
import type * as K from '../server/api/captures.ts';
import type * as Pq from '../server/api/pq.ts';
import type { HistoryField } from '../server/api/deps.ts';

export type DeviceJson = Static<typeof S.DeviceSchema>;
export type EnergyJson = Static<typeof S.EnergyReply>;
export type AllEnergyJson = Static<typeof S.AllEnergyReply>;
export type HistoryJson = Static<typeof S.HistoryReply>;
/** One field's buckets of a history reply; null where a bucket holds no data. */
export type Buckets = HistoryJson['series'][string];
/** A quantity /api/history knows (its `fields` parameter). */
export type HistoryFieldName = HistoryField;
/** A capture request with every defaulted field given (the dashboard states its choices in full). */
export type CaptureBodyJson = S.CaptureBodyT;
export type CaptureCreatedJson = Static<typeof S.CaptureCreated>;
export type CaptureJson = Static<typeof S.CaptureReply>;
/** What the waveform chart and its cursors draw: a capture just taken or one kept in the database. */
export type WaveformJson = Pick<CaptureJson, 'v' | 'i' | 'kv' | 'ki' | 'decimation' | 'sample_rate_hz' | 'trigger_offset'>;
export type KeptCaptureInfoJson = Static<typeof K.KeptCaptureInfoJson>;
export type KeptCaptureJson = Static<typeof K.KeptCaptureReply>;
export type KeptCapturesJson = Static<typeof K.KeptCapturesReply>;
export type KeepCaptureBodyJson = Static<typeof K.KeepCaptureBody>;
export type RenameCaptureBodyJson = Static<typeof K.RenameCaptureBody>;
export type ExportEstimateJson = Static<typeof S.ExportEstimateReply>;
export type CalibrationJson = Static<typeof S.CalibrationReply>;
export type CalibrationBodyJson = Static<typeof S.CalibrationSchema>;
export type ErrorJson = Static<typeof S.ErrorReply>;
export type EnergyPeriodsJson = Static<typeof E.EnergyPeriodsReply>;
export type EnergyPeriodJson = Static<typeof E.EnergyPeriod>;
export type TariffJson = Static<typeof E.TariffSchema>;
export type TariffReplyJson = Static<typeof E.TariffReply>;
export type EventsJson = Static<typeof Ev.EventsReply>;
export type PqHarmonicsJson = Static<typeof Pq.PqHarmonicsReply>;
export type PqEventsJson = Static<typeof Pq.PqEventsReply>;
export type PqEventJson = Static<typeof Pq.PqEventReply>;

/**
 * A query string by the route's own parameter names; `satisfies` at the call site turns a misspelt or
 * renamed parameter into a type error. Values are text on the wire, so any string or number is allowed.
 */
type QueryParams<T> = { [K in keyof T]: string | number };
export type EnergyQueryParams = QueryParams<Static<typeof S.EnergyQuery>>;
export type HistoryQueryParams = QueryParams<Static<typeof S.HistoryQuerySchema>>;
export type ExportQueryParams = QueryParams<Static<typeof S.ExportQuerySchema>>;
export type EventsQueryParams = QueryParams<Static<typeof Ev.EventsQuery>>;
export type KeptCapturesQueryParams = QueryParams<Static<typeof K.KeptCapturesQuery>>;
export type PqRangeQueryParams = QueryParams<Static<typeof Pq.PqRangeQuery>>;
export type EnergyPeriodsQueryParams = QueryParams<Static<typeof E.EnergyPeriodsQuery>> & { bucket: E.EnergyBucket };

export type WindowMsg = Static<typeof S.LiveWindowMessage>;
export type LinkMsg = Static<typeof S.LiveLinkMessage>;
export type DevicesMsg = Static<typeof S.LiveDevicesMessage>;
export type LiveMsg = Static<typeof S.LiveMessage>;

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
      // Partial: a proxy in front of the server may answer with JSON of its own.
      const body = (await res.json()) as Partial<ErrorJson>;
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
