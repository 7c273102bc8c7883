// `crabwatt serve`: store + device session + ingest + the HTTP API and dashboard.
//
// The API seam: serve opens the store and a device session per --device, then hands them to server/api (wireApi adapts
// them to the API's interfaces, buildApp makes the fastify instance); serve alone listens and shuts down.

import { statSync } from 'node:fs';
import { buildApp } from '../api/app.ts';
import { BoundServer, ListenError } from '../api/bound-server.ts';
import { DEFAULT_HOST, DEFAULT_PORT, ListenConfigError, resolveListen, TOKEN_ENV } from '../api/listen.ts';
import { wireApi } from '../api/wire.ts';
import { DeviceLinkError } from '../device/link.ts';
import { ADC_DELAY } from '../protocol/definition.ts';
import { LockHeldError } from '../store/lock.ts';
import { nwhToWhString } from '../store/energy.ts';
import { StoreReader } from '../store/query.ts';
import { Store, StoreError } from '../store/store.ts';
import type { LiveWindow } from '../ingest/ingest.ts';
import { CliError, DEFAULT_DB, parseCommandArgs, parseNumber, parsePqSettings, PQ_OPTIONS, str, strs, UsageError, type Io } from './common.ts';
import { parseDeviceSpecs, parseScenario, parseSimLoad, prepareDevices, type PreparedDevice } from './serve-devices.ts';
import type { DeviceSession } from './session.ts';
import { MQTT_HELP, MQTT_OPTIONS, parseMqttFlags } from '../mqtt/cli.ts';
import { startMqtt, type MqttRuntime } from '../mqtt/start.ts';

export const SERVE_HELP = `crabwatt serve [--device auto|sim[:SCENARIO[:SEED]]|rtl|PATH]... [--db FILE] [--listen HOST:PORT]
               [--token-file FILE] [--allow-host NAME]... [--scenario mains-230-50|mains-120-60|dc] [--speed X]
               [--sim-load APPLIANCE=on|off]...
               [--keep-windows-days N] [--summary] [--adc-read-delay N] [--declared-v V] [--nominal-hz 50|60]
               [--mqtt URL] [--collect URL] [--mqtt-credentials FILE] [--mqtt-ca|cert|key FILE] [--mqtt-id NAME]

Runs the host: reads the devices, stores windows, rollups and exact energy in the database, and serves the
API and dashboard (127.0.0.1:8080 by default; another address needs a token).
  --device   repeat it for several devices, all stored in the one database:
             auto (default): every attached crabwatt board; given alone and none is attached, the simulated device;
             sim: the simulated device (scenario from --scenario); sim:SCENARIO or sim:SCENARIO:SEED: one with
             its own load; the seed (1 to 4294967295) makes its device id, so two sims need two seeds (those not
             given take the free ones from 1 up); rtl: the RTL twin; PATH: a serial device such as /dev/ttyACM0
  --db       database file (default ${DEFAULT_DB}); one serve per database, and each board's port is locked
             to the serve that reads it
  --listen   HOST:PORT to serve on (default ${DEFAULT_HOST}:${DEFAULT_PORT}); beyond loopback a token is required
  --token-file FILE  the API token (16+ characters, one trailing newline ignored), in a file only you may
             read (chmod 600); or set ${TOKEN_ENV}=T. Clients then send 'Authorization: Bearer T'; open the
             dashboard once as http://HOST:PORT/?token=T
  --token T  the same on the command line, where every user of this machine can read it (ps): prefer the two above
  --allow-host NAME  a name (or NAME:PORT) clients reach the server under besides its address, e.g. behind a
             reverse proxy; requests for any other Host, and from web pages of another origin, get 403
  --scenario load of the simulated device (default mains-230-50)
  --sim-load APPLIANCE=on|off  keep one of the simulated devices' appliances on or off instead of its schedule
             (mains: heater, motor, smps, standby, emi-filter, dimmer; dc: see server/sim/load.ts), e.g. a steady
             load to calibrate against
  --speed    simulated device time per wall-clock second, 0.01 to 1000 (default 1 = real time); windows are
             stored on the device's clock, so X > 1 stores X seconds of data per second
  --keep-windows-days  raw windows older than this many whole days are deleted hourly (default 14; 0 keeps them);
             rollups (1 s … 1 d) and the energy counters are kept forever
  --summary  print a live one-line summary beside the API
  --adc-read-delay N  the ADC capture point \`crabwatt bringup\` chose (0 to 255), set on every device at each of its
             boots (the board does not keep it: a reset returns the default, 43)
  --declared-v, --nominal-hz  the supply's declared voltage (default 230) and nominal frequency (50 or 60,
             default 50) of the power-quality analysis of each device's waveform stream: harmonics, THD and
             the dips, swells and interruptions against these (docs/power-quality.md)
${MQTT_HELP}Stop with Ctrl-C: queued windows are written before exit, and serve says how many, with what this run stored.
`;

/** What is running, for tests. */
export interface ServeRuntime {
  store: Store;
  reader: StoreReader;
  /**
   * One per device, in --device order. Each `session.ingest` is that device's event source: 'window' (with the
   * ledger's total_nwh), 'gap', 'epoch', 'identify', 'link' (server/ingest/ingest.ts).
   */
  sessions: DeviceSession[];
  /** http://host:port the API listens on. */
  address: string;
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

function summaryLine(w: LiveWindow, session: DeviceSession): string {
  const c = session.counters;
  const f = (x: number | null, digits: number): string => (x === null ? '—' : x.toFixed(digits));
  return (
    `${w.device} ${f(w.vrms, 1)} V ${f(w.irms, 3)} A ${f(w.p, 1)} W PF ${f(w.pf, 3)} ${f(w.freq_hz, 3)} Hz` +
    ` | total ${nwhToWhString(w.total_nwh)} Wh | frames ${c.frames} crc ${c.crcErrors} gaps ${c.seqGaps}`
  );
}

export async function serveCommand(argv: string[], io: Io, options: ServeOptions = {}): Promise<number> {
  const { values } = parseCommandArgs('serve', argv, {
    device: { type: 'string', multiple: true },
    db: { type: 'string' },
    listen: { type: 'string' },
    token: { type: 'string' },
    'token-file': { type: 'string' },
    'allow-host': { type: 'string', multiple: true },
    scenario: { type: 'string' },
    speed: { type: 'string' },
    'sim-load': { type: 'string', multiple: true },
    summary: { type: 'boolean' },
    'keep-windows-days': { type: 'string' },
    'adc-read-delay': { type: 'string' },
    ...PQ_OPTIONS,
    ...MQTT_OPTIONS,
  });
  if (values['help']) {
    io.out(SERVE_HELP);
    return 0;
  }
  const dbPath = str(values, 'db') ?? DEFAULT_DB;
  const scenario = parseScenario(str(values, 'scenario'));
  const given = strs(values, 'device');
  const specs = parseDeviceSpecs(given.length > 0 ? given : ['auto'], scenario);
  const speed = parseNumber('speed', str(values, 'speed'), 1, (n) => n >= 0.01 && n <= 1000, 'a number from 0.01 to 1000 (1 = real time)');
  // Whole days: 1e-9 days would delete every window older than 86 µs, at each hourly retention pass.
  const keepWindowsDays = parseNumber(
    'keep-windows-days', str(values, 'keep-windows-days'), 14, (n) => Number.isInteger(n) && n >= 0 && n <= 36_500,
    'whole days from 0 to 36500 (0 keeps them forever)',
  );
  const adcReadDelay = str(values, 'adc-read-delay') === undefined ? undefined : parseNumber(
    'adc-read-delay', str(values, 'adc-read-delay'), 0, (n) => Number.isInteger(n) && n >= 0 && n <= ADC_DELAY.MAX,
    `a whole number from 0 to ${ADC_DELAY.MAX} (the capture point crabwatt bringup printed)`,
  );
  const pqSettings = parsePqSettings(values);
  const mqttFlags = parseMqttFlags(values, process.env);
  for (const w of mqttFlags.warnings) io.err(`crabwatt: ${w}\n`);
  let listen: ReturnType<typeof resolveListen>;
  try {
    // Checked before anything opens, so a bad address or missing token costs nothing.
    listen = resolveListen({
      listen: str(values, 'listen'),
      token: str(values, 'token'),
      tokenFile: str(values, 'token-file'),
      allowHosts: strs(values, 'allow-host'),
      env: process.env,
    });
  } catch (err) {
    if (err instanceof ListenConfigError) throw new UsageError(err.message);
    throw err;
  }
  if (str(values, 'token') !== undefined) {
    io.err(`crabwatt: --token is visible to every user of this machine (ps): prefer --token-file FILE or ${TOKEN_ENV}\n`);
  }
  for (const w of listen.warnings) io.err(`crabwatt: ${w}\n`);

  // Everything that can fail is tried before the database is touched, so a failed start leaves no new file
  // and no new row: the address is bound, the device found, locked and opened (or the twin started).
  let bound: BoundServer;
  try {
    bound = await BoundServer.bind(listen.host, listen.port);
  } catch (err) {
    if (err instanceof ListenError) throw new CliError(err.message);
    throw err;
  }
  let prepared: PreparedDevice[];
  let store: Store;
  try {
    try {
      prepared = await prepareDevices(specs, io, scenario, speed, parseSimLoad(strs(values, 'sim-load')));
    } catch (err) {
      if (err instanceof DeviceLinkError || err instanceof LockHeldError) throw new CliError(err.message);
      throw err;
    }
    try {
      store = Store.open(dbPath, {
        onWriteHealth: (h) =>
          io.err(h.state === 'ok' ? `crabwatt: writing to ${dbPath} again\n` : `crabwatt: ingest is held up: ${h.detail}\n`),
        onWarning: (message) => io.err(`crabwatt: ${message}\n`),
        windowRetentionMs: keepWindowsDays === 0 ? null : keepWindowsDays * 86_400_000,
      });
    } catch (err) {
      for (const p of prepared) await p.release();
      if (err instanceof LockHeldError || err instanceof StoreError) throw new CliError(err.message);
      throw err;
    }
  } catch (err) {
    await bound.close();
    throw err;
  }
  let sessions: DeviceSession[] | undefined;
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  let wired: ReturnType<typeof wireApi> | undefined;
  let summaryTimer: NodeJS.Timeout | undefined;
  /** Set once serve ran and was asked to stop: only then is the exit worth a report. */
  let running = false;
  let mqttRuntime: MqttRuntime | undefined;
  const retentionTimer = setInterval(() => {
    try {
      store.applyRetention(Date.now());
    } catch (err) {
      io.err(`crabwatt: retention: ${(err as Error).message}\n`);
    }
  }, 3_600_000);
  retentionTimer.unref();
  try {
    store.applyRetention(Date.now());
    sessions = prepared.map((p) => p.session(store));
    store.recordEvent('serve_start', null, Date.now(), `crabwatt serve started (device ${sessions.map((s) => s.path).join(', ')})`);
    for (const s of sessions) {
      s.ingest.startPq(pqSettings);
      s.ingest.on('link', (e: { device: string; state: string; detail: string }) =>
        store.recordEvent(`link_${e.state}`, e.device || null, Date.now(), e.detail),
      );
      s.ingest.on('ingest-error', (err: Error) => io.err(`crabwatt: ingest: ${err.message}\n`));
      // Once per change of state, not per window.
      s.ingest.on('duplicates', (e: { warning: string | null }) =>
        io.err(e.warning ? `crabwatt: warning: ${e.warning}\n` : 'crabwatt: windows are new again: storing resumed\n'),
      );
    }
    const reader = new StoreReader(store.db);
    wired = wireApi({
      reader,
      dbPath, // exports read on their own connection, never holding the writer's
      log: (message) => io.err(`crabwatt: ${message}\n`),
      storage: () => store.health,
      devices: sessions.map((s) => ({
        ingest: s.ingest, link: s, kind: s.kind, path: s.path,
        ...(s.initialState ? { initialState: s.initialState } : {}), ...(adcReadDelay === undefined ? {} : { adcReadDelay }),
      })),
    });
    app = await buildApp({
      store: wired.store, devices: wired.devices, live: wired.live, token: listen.token, allowHosts: listen.allowHosts,
      serverFactory: bound.serverFactory, databaseBytes: () => databaseBytes(dbPath),
      logInternalError: (line) => io.err(`crabwatt: api: ${line}\n`),
    });
    // Before the devices start: the outbox and Home Assistant see their first frames (identify) too.
    mqttRuntime = startMqtt(mqttFlags, store, sessions.map((s) => s.ingest), (message) => io.err(`crabwatt: ${message}\n`));
    // The devices first: a missing or busy device is reported before the dashboard is announced. Each link
    // recovers on its own from then on, so one that fails later never stops the others.
    for (const [i, s] of sessions.entries()) {
      try {
        await s.start();
      } catch (err) {
        if (err instanceof DeviceLinkError) throw new CliError(err.message);
        throw err;
      }
      prepared[i]!.linkOpened();
    }
    await app.ready();
    bound.open();
    const address = bound.url;
    io.err(`crabwatt: dashboard and API on ${address} (database ${dbPath}, device ${sessions.map((s) => s.path).join(', ')})\n`);
    const runtime: ServeRuntime = { store, reader, sessions, address };
    if (values['summary']) {
      const latest = new Map<DeviceSession, LiveWindow>();
      for (const s of sessions) s.ingest.on('window', (w: LiveWindow) => latest.set(s, w));
      const tty = process.stderr.isTTY === true;
      let ticks = 0;
      summaryTimer = setInterval(() => {
        ticks++;
        if (latest.size === 0) return;
        const line = [...latest].map(([s, w]) => summaryLine(w, s)).join('  ‖  ');
        // On a terminal the line updates in place; in a log, one line every 10 s.
        if (tty) io.err(`\r${line}\x1b[K`);
        else if (ticks % 10 === 0) io.err(`${line}\n`);
      }, 1000);
    }
    options.onReady?.(runtime);
    await (options.until ?? stopSignal());
    running = true;
    return 0;
  } finally {
    if (summaryTimer) clearInterval(summaryTimer);
    clearInterval(retentionTimer);
    await app?.close();
    await bound.close();
    wired?.close();
    if (sessions) for (const s of sessions) await s.close();
    // After the links closed, before the last flush: the voltage events seen so far are stored.
    if (sessions) for (const s of sessions) s.ingest.pq?.stop();
    else for (const p of prepared) await p.release();
    // After the devices stopped: the last state published is the final counter.
    await mqttRuntime?.close();
    if (process.stderr.isTTY) io.err('\n');
    const stored = sessions ? sessions.map((s) => storedThisRun(s, store)).join('; ') : '';
    store.recordEvent('serve_stop', null, Date.now(), 'crabwatt serve stopped');
    const written = closeStore(store);
    if (running) io.err(`crabwatt: stopped: ${written} queued window(s) and gap(s) written to ${dbPath}; ${stored}\n`);
  }
}

/** The database file and its write-ahead log (a file not there yet takes no room). */
function databaseBytes(dbPath: string): number {
  return [dbPath, `${dbPath}-wal`].reduce((sum, f) => sum + (statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);
}

/** What a run stored, for the report at exit (read before the store closes). */
function storedThisRun(session: DeviceSession, store: Store): string {
  const ref = session.ingest.deviceRef;
  const windows = `${session.ingest.counters.windows} window(s) stored this run`;
  return ref ? `${windows}; device ${ref.hex}: energy total ${nwhToWhString(store.totalNwh(ref))} Wh` : `${windows}; no device identified`;
}

/**
 * The last flush at exit; returns how many queued rows it wrote. If the database still cannot take them (a full
 * disk), say what was lost and exit 1.
 */
function closeStore(store: Store): number {
  const queued = store.pending;
  try {
    store.close();
    return queued;
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    throw new CliError(`${queued} queued window(s) and gap(s) could not be written before exit: ${err.message}`);
  }
}
