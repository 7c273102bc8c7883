// `crabwatt serve`: store + device session + ingest + the HTTP API and dashboard.
//
// The API seam: serve opens the store and the device session, then hands them to server/api (wireApi adapts
// them to the API's interfaces, buildApp makes the fastify instance); serve alone listens and shuts down.

import { randomInt } from 'node:crypto';
import { buildApp } from '../api/app.ts';
import { BoundServer, ListenError } from '../api/bound-server.ts';
import { DEFAULT_HOST, DEFAULT_PORT, ListenConfigError, resolveListen, TOKEN_ENV } from '../api/listen.ts';
import { wireApi } from '../api/wire.ts';
import { listDevices } from '../device/discovery.ts';
import { DeviceLinkError } from '../device/link.ts';
import { holdSerialPath } from '../device/serial-path.ts';
import { SimulatedDevice } from '../sim/device.ts';
import { RtlTwinError, startRtlTwin, type RtlTwin } from '../twin/rtl.ts';
import { SCENARIOS, type ScenarioName } from '../sim/load.ts';
import { acquireLock, deviceLockPath, LockHeldError } from '../store/lock.ts';
import { nwhToWhString } from '../store/energy.ts';
import { StoreReader } from '../store/query.ts';
import { Store, StoreError } from '../store/store.ts';
import type { LiveWindow } from '../ingest/ingest.ts';
import { CliError, DEFAULT_DB, parseCommandArgs, parseNumber, str, strs, UsageError, type Io } from './common.ts';
import { DeviceSession, HARDWARE_DEFAULT_SCALE, simulatedSession } from './session.ts';
import { MQTT_HELP, MQTT_OPTIONS, parseMqttFlags } from '../mqtt/cli.ts';
import { startMqtt, type MqttRuntime } from '../mqtt/start.ts';

export const SERVE_HELP = `crabwatt serve [--device auto|sim|rtl|PATH] [--db FILE] [--listen HOST:PORT] [--token-file FILE]
               [--allow-host NAME]... [--scenario mains-230-50|mains-120-60|dc] [--speed X]
               [--keep-windows-days N] [--summary] [--sim-seed N]
               [--mqtt URL] [--collect URL] [--mqtt-credentials FILE] [--mqtt-ca|cert|key FILE] [--mqtt-id NAME]

Runs the host: reads the device, stores windows, rollups and exact energy in the database, and serves the
API and dashboard (127.0.0.1:8080 by default; another address needs a token).
  --device   auto (default): the attached crabwatt board, else the simulated device;
             sim: the simulated device; rtl: the RTL twin; PATH: a serial device such as /dev/ttyACM0
  --db       database file (default ${DEFAULT_DB}); one serve per database and per device
  --listen   HOST:PORT to serve on (default ${DEFAULT_HOST}:${DEFAULT_PORT}); beyond loopback a token is required
  --token-file FILE  the API token (16+ characters, one trailing newline ignored), in a file only you may
             read (chmod 600); or set ${TOKEN_ENV}=T. Clients then send 'Authorization: Bearer T'; open the
             dashboard once as http://HOST:PORT/?token=T
  --token T  the same on the command line, where every user of this machine can read it (ps): prefer the two above
  --allow-host NAME  a name (or NAME:PORT) clients reach the server under besides its address, e.g. behind a
             reverse proxy; requests for any other Host, and from web pages of another origin, get 403
  --scenario load of the simulated device (default mains-230-50)
  --speed    simulated device time per wall-clock second, 0.01 to 1000 (default 1 = real time); windows are
             stored on the device's clock, so X > 1 stores X seconds of data per second
  --keep-windows-days  raw windows older than this many whole days are deleted hourly (default 14; 0 keeps them);
             rollups (1 s … 1 d) and the energy counters are kept forever
  --summary  print a live one-line summary beside the API
  --sim-seed N  the simulated device's seed (default 1): its device id, so several simulated hosts differ
${MQTT_HELP}Stop with Ctrl-C: queued windows are written before exit.
`;

/** What is running, for tests. */
export interface ServeRuntime {
  store: Store;
  reader: StoreReader;
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

function parseScenario(text: string | undefined): ScenarioName {
  const s = text ?? 'mains-230-50';
  if (!(SCENARIOS as readonly string[]).includes(s)) throw new UsageError(`--scenario '${s}': choose one of ${SCENARIOS.join(', ')}`);
  return s as ScenarioName;
}

/**
 * A device found and claimed (locked, opened, or started) before the database is touched; `session` makes its
 * DeviceSession on the store once that is open. `release` gives back what was claimed when serve stops before
 * the session ran; `linkOpened` lets go of the check's descriptor once the link holds the port itself.
 */
interface PreparedDevice {
  session(store: Store): DeviceSession;
  linkOpened(): void;
  release(): Promise<void>;
}

const nothing = async (): Promise<void> => undefined;

/** A board's port: locked for this serve, opened as a terminal (serial-path.ts), unlocked when the session closes. */
function claimPort(path: string): PreparedDevice {
  const lock = acquireLock(deviceLockPath(path), `device ${path}`);
  let held: { release: () => void };
  try {
    held = holdSerialPath(path);
  } catch (err) {
    lock.release();
    throw err;
  }
  return {
    session: (store) =>
      new DeviceSession({
        kind: 'hardware', path, store, defaultScale: HARDWARE_DEFAULT_SCALE,
        onClose: async () => {
          held.release();
          lock.release();
        },
      }),
    linkOpened: () => held.release(),
    release: async () => {
      held.release();
      lock.release();
    },
  };
}

async function prepareDevice(device: string, io: Io, scenario: ScenarioName, speed: number, seed: number): Promise<PreparedDevice> {
  const sim: PreparedDevice = {
    // A fresh boot_id per run (the device id stays, from the fixed seed): a restart on the same database is a
    // new epoch of the same device, not a replay of the previous run's windows.
    session: (store) =>
      simulatedSession(store, new SimulatedDevice({ scenario, speed, seed, bootEntropy: () => randomInt(2 ** 32) }), scenario),
    linkOpened: () => undefined,
    release: nothing,
  };
  if (device === 'sim') return sim;
  if (device === 'rtl') {
    // The Verilator twin of the whole SoC running the real firmware: its UART is a pseudo-terminal, opened
    // through the same link, parser and decoder as a board. Building it takes a minute the first time.
    io.err('crabwatt: starting the RTL twin (gateware + firmware in Verilator; slower than real time)\n');
    let twin: RtlTwin;
    try {
      // 48 twin cycles per sample pair, as in the end-to-end test: the vectors squeeze a mains cycle into
      // ~200 samples, and at full rate the firmware would have to drop most frames for the UART.
      twin = await startRtlTwin({ samplePeriodCycles: 48, log: (line) => io.err(`twin: ${line}\n`) });
    } catch (err) {
      if (err instanceof RtlTwinError) throw new CliError(err.message);
      throw err;
    }
    return {
      session: (store) =>
        new DeviceSession({
          kind: 'rtl', path: twin.path, store, defaultScale: HARDWARE_DEFAULT_SCALE,
          label: `rtl:${twin.path}`, name: 'RTL twin', onClose: () => twin.close(),
        }),
      linkOpened: () => undefined,
      release: async () => void (await twin.close()),
    };
  }
  if (device !== 'auto') return claimPort(device);
  const found = await listDevices();
  const ours = found.filter((d) => d.mode === 'crabwatt' && d.path);
  if (ours.length > 0) {
    const d = ours[0]!;
    if (ours.length > 1) io.err(`crabwatt: ${ours.length} boards found, using ${d.path} (choose with --device PATH)\n`);
    return claimPort(d.stablePath ?? d.path!);
  }
  if (found.some((d) => d.mode === 'bootloader')) {
    const detail = 'the board is in its bootloader (foboot): flash it with `crabwatt flash FILE.dfu`, or start the installed bitstream with `dfu-util -a 0 -e` (r0.1 stays in DFU until then; r0.2 also starts it when replugged without the button)';
    io.err(`crabwatt: ${detail}; waiting for it to come back as a crabwatt device\n`);
    return {
      session: (store) =>
        new DeviceSession({
          kind: 'hardware', path: 'auto', store, defaultScale: HARDWARE_DEFAULT_SCALE,
          waitForDevice: true, initialState: { state: 'bootloader', detail },
        }),
      linkOpened: () => undefined,
      release: nothing,
    };
  }
  io.err('crabwatt: no crabwatt board found: running the simulated device (use --device PATH for a board)\n');
  return sim;
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
    device: { type: 'string' },
    db: { type: 'string' },
    listen: { type: 'string' },
    token: { type: 'string' },
    'token-file': { type: 'string' },
    'allow-host': { type: 'string', multiple: true },
    scenario: { type: 'string' },
    speed: { type: 'string' },
    summary: { type: 'boolean' },
    'keep-windows-days': { type: 'string' },
    'sim-seed': { type: 'string' },
    ...MQTT_OPTIONS,
  });
  if (values['help']) {
    io.out(SERVE_HELP);
    return 0;
  }
  const device = str(values, 'device') ?? 'auto';
  const dbPath = str(values, 'db') ?? DEFAULT_DB;
  const scenario = parseScenario(str(values, 'scenario'));
  const speed = parseNumber('speed', str(values, 'speed'), 1, (n) => n >= 0.01 && n <= 1000, 'a number from 0.01 to 1000 (1 = real time)');
  // Whole days: 1e-9 days would delete every window older than 86 µs, at each hourly retention pass.
  const keepWindowsDays = parseNumber(
    'keep-windows-days', str(values, 'keep-windows-days'), 14, (n) => Number.isInteger(n) && n >= 0 && n <= 36_500,
    'whole days from 0 to 36500 (0 keeps them forever)',
  );
  const simSeed = parseNumber('sim-seed', str(values, 'sim-seed'), 1, (n) => Number.isInteger(n) && n >= 1 && n < 2 ** 32, 'a whole number from 1 to 2^32 - 1');
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
  let prepared: PreparedDevice;
  let store: Store;
  try {
    try {
      prepared = await prepareDevice(device, io, scenario, speed, simSeed);
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
      await prepared.release();
      if (err instanceof LockHeldError || err instanceof StoreError) throw new CliError(err.message);
      throw err;
    }
  } catch (err) {
    await bound.close();
    throw err;
  }
  let session: DeviceSession | undefined;
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  let wired: ReturnType<typeof wireApi> | undefined;
  let summaryTimer: NodeJS.Timeout | undefined;
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
    session = prepared.session(store);
    const s = session;
    s.ingest.on('ingest-error', (err: Error) => io.err(`crabwatt: ingest: ${err.message}\n`));
    // Once per change of state, not per window.
    s.ingest.on('duplicates', (e: { warning: string | null }) =>
      io.err(e.warning ? `crabwatt: warning: ${e.warning}\n` : 'crabwatt: windows are new again: storing resumed\n'),
    );
    const reader = new StoreReader(store.db);
    wired = wireApi({
      reader,
      dbPath, // exports read on their own connection, never holding the writer's
      log: (message) => io.err(`crabwatt: ${message}\n`),
      storage: () => store.health,
      devices: [{ ingest: s.ingest, link: s, kind: s.kind, path: s.path, ...(s.initialState ? { initialState: s.initialState } : {}) }],
    });
    app = await buildApp({
      store: wired.store, devices: wired.devices, live: wired.live, token: listen.token, allowHosts: listen.allowHosts,
      serverFactory: bound.serverFactory,
      logInternalError: (line) => io.err(`crabwatt: api: ${line}\n`),
    });
    // Before the device starts: the outbox and Home Assistant see its first frame (identify) too.
    mqttRuntime = startMqtt(mqttFlags, store, [s.ingest], (message) => io.err(`crabwatt: ${message}\n`));
    // The device first: a missing or busy device is reported before the dashboard is announced.
    try {
      await s.start();
    } catch (err) {
      if (err instanceof DeviceLinkError) throw new CliError(err.message);
      throw err;
    }
    prepared.linkOpened();
    await app.ready();
    bound.open();
    const address = bound.url;
    io.err(`crabwatt: dashboard and API on ${address} (database ${dbPath}, device ${s.path})\n`);
    const runtime: ServeRuntime = { store, reader, sessions: [s], address };
    if (values['summary']) {
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
    await app?.close();
    await bound.close();
    wired?.close();
    if (session) await session.close();
    else await prepared.release();
    // After the device stopped: the last state published is the final counter.
    await mqttRuntime?.close();
    if (process.stderr.isTTY) io.err('\n');
    closeStore(store);
  }
}

/** The last flush at exit; if the database still cannot take it (a full disk), say what was lost and exit 1. */
function closeStore(store: Store): void {
  const queued = store.pending;
  try {
    store.close();
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    throw new CliError(`${queued} queued window(s) and gap(s) could not be written before exit: ${err.message}`);
  }
}
