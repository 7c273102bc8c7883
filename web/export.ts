// The export dialog: range (wall-clock times in the chosen zone, shown again in a new zone when it changes, so
// the instants stay), interval and zone; the CSV is streamed with a progress bar (rows received against the
// server's estimate) and then saved as a file.

import { api, query, request, withToken, type ExportEstimateJson, type ExportQueryParams } from './api.ts';

const $ = <T extends HTMLElement>(sel: string) => document.querySelector<T>(sel)!;

let abort: AbortController | null = null;

/** Above this many rows an export is not gathered in the page's memory (a year of 1 s rows is ~6 GB). */
const IN_MEMORY_ROWS = 500_000;

interface FileSink {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

type SavePicker = (opts: { suggestedName: string; types: { description: string; accept: Record<string, string[]> }[] }) => Promise<{
  createWritable(): Promise<FileSink>;
}>;

/** A file the user picks, written as the CSV arrives (Chromium's File System Access); null where unavailable. */
async function fileSink(suggestedName: string): Promise<FileSink | null> {
  const picker = (window as unknown as { showSaveFilePicker?: SavePicker }).showSaveFilePicker;
  if (!picker) return null;
  try {
    const handle = await picker({ suggestedName, types: [{ description: 'CSV', accept: { 'text/csv': ['.csv'] } }] });
    return await handle.createWritable();
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err; // the user cancelled the dialog: no export
    return null; // e.g. no user activation left: fall back to the browser's download
  }
}

export function nativeDownload(path: string): void {
  const a = document.createElement('a');
  a.href = withToken(path);
  a.download = '';
  document.body.append(a);
  a.click();
  a.remove();
}

/** The zone's offset from UTC at an instant, ms (Intl gives the zone's wall clock; the difference is the offset). */
function offsetMs(ms: number, zone: string): number {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(ms).map((p) => [p.type, Number(p.value)]),
  );
  const wall = Date.UTC(parts['year']!, parts['month']! - 1, parts['day']!, parts['hour']!, parts['minute']!, parts['second']!);
  return wall - Math.floor(ms / 1000) * 1000;
}

/** An instant as the 'YYYY-MM-DDTHH:MM' a datetime-local input holds, on the wall clock of `zone`. */
function wallInput(ms: number, zone: string): string {
  return new Date(ms + offsetMs(ms, zone)).toISOString().slice(0, 16);
}

/** The instant a datetime-local value names on the wall clock of `zone` (the later one in a repeated hour). */
function instantOf(value: string, zone: string): number {
  const wall = Date.parse(`${value}:00Z`);
  let ms = wall - offsetMs(wall, zone);
  ms = wall - offsetMs(ms, zone);
  return ms;
}

function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return zone.length > 0;
  } catch {
    return false;
  }
}

/** The zone the From/To inputs are shown in: the server reads them in the zone field's zone, so the two agree. */
let shownZone = '';

export function openExportDialog(fromMs: number, toMs: number): void {
  const tz = $<HTMLInputElement>('#exp-tz').value.trim();
  shownZone = validZone(tz) ? tz : 'UTC';
  // The inputs hold whole minutes: widen the range outwards so the newest rows are not cut off.
  $<HTMLInputElement>('#exp-from').value = wallInput(Math.floor(fromMs / 60_000) * 60_000, shownZone);
  $<HTMLInputElement>('#exp-to').value = wallInput(Math.ceil(toMs / 60_000) * 60_000 + 60_000, shownZone);
  $<HTMLProgressElement>('#exp-progress').hidden = true;
  $('#exp-status').textContent = '';
  $<HTMLDialogElement>('#export-dialog').showModal();
}

export function setupExportDialog(device: () => string | null, zone: string): void {
  const tz = $<HTMLInputElement>('#exp-tz');
  tz.value = zone;
  const zones = (Intl as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('timeZone') ?? ['UTC'];
  $('#tz-list').replaceChildren(
    ...zones.map((z) => {
      const o = document.createElement('option');
      o.value = z;
      return o;
    }),
  );
  // Another zone shows the same instants on its own wall clock: the range on screen is what gets exported.
  tz.addEventListener('change', () => {
    const next = tz.value.trim();
    if (!validZone(next) || next === shownZone) return;
    for (const sel of ['#exp-from', '#exp-to']) {
      const input = $<HTMLInputElement>(sel);
      if (input.value) input.value = wallInput(instantOf(input.value, shownZone), next);
    }
    shownZone = next;
  });
  $('#exp-cancel').addEventListener('click', () => {
    abort?.abort();
    $<HTMLDialogElement>('#export-dialog').close();
  });
  $<HTMLFormElement>('#export-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = device();
    if (id) void run(id);
  });
}

async function run(device: string): Promise<void> {
  const status = $('#exp-status');
  const bar = $<HTMLProgressElement>('#exp-progress');
  const go = $<HTMLButtonElement>('#exp-go');
  // Times without an offset are read by the server as wall-clock times in `tz`.
  const params = {
    device,
    from: $<HTMLInputElement>('#exp-from').value,
    to: $<HTMLInputElement>('#exp-to').value,
    interval: $<HTMLSelectElement>('#exp-interval').value,
    tz: $<HTMLInputElement>('#exp-tz').value.trim(),
  } satisfies ExportQueryParams;
  abort?.abort();
  abort = new AbortController();
  go.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  try {
    const { rows } = await api<ExportEstimateJson>(`/api/export/estimate?${query(params)}`, { signal: abort.signal });
    status.textContent = `about ${rows.toLocaleString('en-US')} rows…`;
    const suggested = `crabwatt-${device}-${params.interval}.csv`;
    // Large exports go straight to a file chosen by the user (streamed, with our progress) where the browser
    // can; elsewhere to the browser's own download, which streams to disk and shows its progress. Only small
    // ones are gathered in memory.
    const sink = rows > IN_MEMORY_ROWS ? await fileSink(suggested) : null;
    if (rows > IN_MEMORY_ROWS && !sink) {
      nativeDownload(`/api/export.csv?${query(params)}`);
      bar.hidden = true;
      status.textContent = `${rows.toLocaleString('en-US')} rows: the browser's download list shows the progress`;
      return;
    }
    const res = await request(`/api/export.csv?${query(params)}`, { signal: abort.signal });
    const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? suggested;
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    let lines = 0;
    let bytes = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (sink) await sink.write(value);
      else parts.push(value);
      bytes += value.length;
      for (let k = 0; k < value.length; k++) if (value[k] === 10) lines++;
      bar.value = Math.min(1, lines / (rows + 1));
      status.textContent = `${Math.max(0, lines - 1).toLocaleString('en-US')} of ~${rows.toLocaleString('en-US')} rows, ${(bytes / 1e6).toFixed(1)} MB`;
    }
    bar.value = 1;
    if (sink) {
      await sink.close();
    } else {
      const url = URL.createObjectURL(new Blob(parts as BlobPart[], { type: 'text/csv' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = name;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    }
    status.textContent = `saved ${sink ? 'the file' : name}: ${Math.max(0, lines - 1).toLocaleString('en-US')} rows`;
  } catch (err) {
    if ((err as Error).name !== 'AbortError') status.textContent = `export failed: ${(err as Error).message}`;
    bar.hidden = true;
  } finally {
    go.disabled = false;
  }
}
