// `crabwatt serve`: store + device session + ingest, and the HTTP API when server/api provides it.
//
// The API seam: serve builds a ServeRuntime and, when the module `server/api/wire.ts` exists and exports
// `startApi(runtime, {listen, token})`, hands the runtime to it (the API owns listening and its own shutdown
// via the returned `close`). Without it, serve prints a live one-line summary instead.

import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListenConfigError, resolveListen } from '../api/listen.ts';
import { SimulatedDevice } from '../sim/device.ts';
import { SCENARIOS, type ScenarioName } from '../sim/load.ts';
import { LockHeldError } from '../store/lock.ts';
import { nwhToWhString } from '../store/energy.ts';
import { StoreReader } from '../store/query.ts';
import { Store } from '../store/store.ts';
import type { LiveWindow } from '../ingest/ingest.ts';
import { CliError, DEFAULT_DB, parseCommandArgs, parseNumber, str, UsageError, type Io } from './common.ts';
import { SimSession, type DeviceSession } from './session.ts';

export const SERVE_HELP = `crabwatt serve [--device auto|sim|rtl|PATH] [--db FILE] [--listen HOST:PORT] [--token T]
               [--scenario mains-230-50|mains-120-60|dc] [--speed X] [--summary]

Runs the host: reads the device, stores windows, rollups and exact energy in the database, and serves the
API and dashboard (127.0.0.1:8080 by default; another address needs --token or CRABWATT_TOKEN).
  --device   auto (default): the attached crabwatt board, else the simulated device;
             sim: the simulated device; rtl: the RTL twin; PATH: a serial device such as /dev/ttyACM0
  --db       database file (default ${DEFAULT_DB}); one serve per database and per device
  --scenario load of the simulated device (default mains-230-50)
  --speed    simulated device time per wall-clock second (default 1 = real time)
  --summary  print a live one-line summary even when the API runs
Stop with Ctrl-C: queued windows are written before exit.
`;

/** What serve hands to the API (server/api/wire.ts). */
export interface ServeRuntime {
  store: Store;
  reader: StoreReader;
  sessions: DeviceSession[];
  /** Emits 'window' (LiveWindow) and 'link' (LinkEvent) of every session. */
  live: EventEmitter;
}

export interface ApiHandle {
  /** e.g. http://127.0.0.1:8080 */
  address: string;
  close(): Promise<void>;
}

type StartApi = (runtime: ServeRuntime, opts: { listen?: string | undefined; token?: string | undefined }) => Promise<ApiHandle>;

const here = dirname(fileURLToPath(import.meta.url));

async function loadApi(): Promise<StartApi | undefined> {
  const wire = join(here, '..', 'api', 'wire.ts');
  if (!existsSync(wire)) return undefined;
  const mod = (await import(wire)) as { startApi?: StartApi };
  return typeof mod.startApi === 'function' ? mod.startApi : undefined;
}

export interface ServeOptions {
  /** Resolves when serve should stop (tests); default: SIGINT or SIGTERM. */
  until?: Promise<void>;
  /** Called once everything is running (tests). */
  onReady?: (runtime: ServeRuntime) => void;
}

function stopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function parseScenario(text: string | undefined): ScenarioName {
  const s = text ?? 'mains-230-50';
  if (!(SCENARIOS as readonly string[]).includes(s)) throw new UsageError(`--scenario '${s}': choose one of ${SCENARIOS.join(', ')}`);
  return s as ScenarioName;
}

async function openSession(
  device: string, store: Store, io: Io, scenario: ScenarioName, speed: number,
): Promise<DeviceSession> {
  const sim = (): DeviceSession => new SimSession(new SimulatedDevice({ scenario, speed }), store, scenario);
  if (device === 'sim') return sim();
  if (device === 'auto') {
    io.err('crabwatt: no crabwatt board found: running the simulated device (use --device PATH for a board)\n');
    return sim();
  }
  if (device === 'rtl') {
    throw new CliError('the RTL twin is not available in this build: build it with `npm run gateware`, or use --device sim');
  }
  throw new CliError(`serial devices (${device}) need the device link (server/device), which this build lacks; use --device sim`);
}

function summaryLine(w: LiveWindow, session: DeviceSession): string {
  const c = session.counters();
  const f = (x: number | null, digits: number): string => (x === null ? '—' : x.toFixed(digits));
  return (
    `${w.device} ${f(w.vrms, 1)} V ${f(w.irms, 3)} A ${f(w.p, 1)} W PF ${f(w.pf, 3)} ${f(w.freq_hz, 3)} Hz` +
    ` | total ${nwhToWhString(w.total_nwh)} Wh | frames ${c.frames} crc ${c.crcErrors} gaps ${c.seqGaps}`
  );
}

export async function serveCommand(argv: string[], io: Io, options: ServeOptions = {}): Promise<number> {
  const { values } = parseCommandArgs('serve', argv, {
    device: { type: 'string' },
    db: { type: 'string' },
    listen: { type: 'string' },
    token: { type: 'string' },
    scenario: { type: 'string' },
    speed: { type: 'string' },
    summary: { type: 'boolean' },
  });
  if (values['help']) {
    io.out(SERVE_HELP);
    return 0;
  }
  const device = str(values, 'device') ?? 'auto';
  const dbPath = str(values, 'db') ?? DEFAULT_DB;
  const scenario = parseScenario(str(values, 'scenario'));
  const speed = parseNumber('speed', str(values, 'speed'), 1, (n) => n > 0, 'a positive number (1 = real time)');
  try {
    // Checked before anything opens, so a bad address or missing token costs nothing.
    resolveListen({ listen: str(values, 'listen'), token: str(values, 'token'), env: process.env });
  } catch (err) {
    if (err instanceof ListenConfigError) throw new UsageError(err.message);
    throw err;
  }
  const startApi = await loadApi();

  let store: Store;
  try {
    store = Store.open(dbPath);
  } catch (err) {
    if (err instanceof LockHeldError) throw new CliError(err.message);
    throw err;
  }
  const live = new EventEmitter();
  let session: DeviceSession | undefined;
  let api: ApiHandle | undefined;
  let summaryTimer: NodeJS.Timeout | undefined;
  const retentionTimer = setInterval(() => store.applyRetention(Date.now()), 3_600_000);
  retentionTimer.unref();
  try {
    store.applyRetention(Date.now());
    session = await openSession(device, store, io, scenario, speed);
    const s = session;
    s.ingest.on('window', (w) => live.emit('window', w));
    s.ingest.on('link', (ev) => live.emit('link', ev));
    s.ingest.on('ingest-error', (err: Error) => io.err(`crabwatt: ingest: ${err.message}\n`));
    const runtime: ServeRuntime = { store, reader: new StoreReader(store.db), sessions: [s], live };
    if (startApi) {
      api = await startApi(runtime, { listen: str(values, 'listen'), token: str(values, 'token') });
      io.err(`crabwatt: dashboard and API on ${api.address} (database ${dbPath})\n`);
    } else {
      io.err(`crabwatt: storing into ${dbPath}; the HTTP API is not part of this build\n`);
    }
    if (!startApi || values['summary']) {
      let latest: LiveWindow | undefined;
      s.ingest.on('window', (w: LiveWindow) => (latest = w));
      const tty = process.stderr.isTTY === true;
      let ticks = 0;
      summaryTimer = setInterval(() => {
        ticks++;
        if (!latest) return;
        // On a terminal the line updates in place; in a log, one line every 10 s.
        if (tty) io.err(`\r${summaryLine(latest, s)}\x1b[K`);
        else if (ticks % 10 === 0) io.err(`${summaryLine(latest, s)}\n`);
      }, 1000);
    }
    options.onReady?.(runtime);
    await (options.until ?? stopSignal());
    return 0;
  } finally {
    if (summaryTimer) clearInterval(summaryTimer);
    clearInterval(retentionTimer);
    await api?.close();
    await session?.close();
    store.close();
    if (process.stderr.isTTY) io.err('\n');
  }
}
