// The devices of one `serve`: each `--device` spec (auto, sim[:SCENARIO[:SEED]], rtl, PATH) found and claimed
// before the database is touched. Every board's port is locked on its own (store/lock.ts deviceLockPath), so
// one serve holds several locks and a second serve is refused the one port it asks for, not the whole host.

import { randomInt } from 'node:crypto';
import { listDevices } from '../device/discovery.ts';
import { holdSerialPath } from '../device/serial-path.ts';
import { SimulatedDevice } from '../sim/device.ts';
import { SCENARIO_SPECS, SCENARIOS, type ScenarioName } from '../sim/scenarios.ts';
import { RtlTwinError, startRtlTwin, type RtlTwin } from '../twin/rtl.ts';
import { acquireLock, deviceLockPath } from '../store/lock.ts';
import type { Store } from '../store/store.ts';
import { CliError, UsageError, type Io } from './common.ts';
import { DeviceSession, HARDWARE_DEFAULT_SCALE, simulatedSession } from './session.ts';

/**
 * A device found and claimed (locked, opened, or started) before the database is touched; `session` makes its
 * DeviceSession on the store once that is open. `release` gives back what was claimed when serve stops before
 * the session ran; `linkOpened` lets go of the check's descriptor once the link holds the port itself.
 */
export interface PreparedDevice {
  session(store: Store): DeviceSession;
  linkOpened(): void;
  release(): Promise<void>;
}

export type DeviceSpec =
  | { kind: 'auto' }
  | { kind: 'rtl' }
  | { kind: 'port'; path: string }
  | { kind: 'sim'; scenario: ScenarioName; seed: number };

export function parseScenario(text: string | undefined, what = '--scenario'): ScenarioName {
  const s = text ?? 'mains-230-50';
  if (!(SCENARIOS as readonly string[]).includes(s)) throw new UsageError(`${what} '${s}': choose one of ${SCENARIOS.join(', ')}`);
  return s as ScenarioName;
}

/**
 * The `--device` values in order. A simulated device's id comes from its seed, so two sims in one serve need
 * two seeds: those not given take the smallest free ones from 1 (a lone `sim` keeps seed 1, the id it always had).
 */
export function parseDeviceSpecs(texts: readonly string[], defaultScenario: ScenarioName): DeviceSpec[] {
  const given = new Set<number>();
  const sims: { scenario: ScenarioName; seed: number | undefined }[] = [];
  const specs: (DeviceSpec | { kind: 'sim'; index: number })[] = texts.map((text) => {
    if (text === 'auto' || text === 'rtl') return { kind: text };
    if (text !== 'sim' && !text.startsWith('sim:')) return { kind: 'port', path: text };
    const [, scenarioText, seedText, ...rest] = text.split(':');
    if (rest.length > 0) throw new UsageError(`--device '${text}': write sim, sim:SCENARIO or sim:SCENARIO:SEED`);
    const scenario = scenarioText ? parseScenario(scenarioText, `--device '${text}': scenario`) : defaultScenario;
    let seed: number | undefined;
    if (seedText !== undefined) {
      seed = Number(seedText);
      if (!/^\d+$/.test(seedText) || seed < 1 || seed > 0xffff_ffff) {
        throw new UsageError(`--device '${text}': the seed must be a whole number from 1 to 4294967295`);
      }
      if (given.has(seed)) throw new UsageError(`--device '${text}': seed ${seed} is given twice; each simulated device needs its own`);
      given.add(seed);
    }
    sims.push({ scenario, seed });
    return { kind: 'sim', index: sims.length - 1 };
  });
  if (specs.filter((s) => s.kind === 'rtl').length > 1) throw new UsageError('--device rtl: one RTL twin per serve');
  if (specs.filter((s) => s.kind === 'auto').length > 1) throw new UsageError('--device auto: give it once (it takes every attached board)');
  let next = 1;
  for (const sim of sims) {
    if (sim.seed !== undefined) continue;
    while (given.has(next)) next++;
    sim.seed = next;
    given.add(next);
  }
  return specs.map((s) => ('index' in s ? { kind: 'sim', scenario: sims[s.index]!.scenario, seed: sims[s.index]!.seed! } : s));
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

/** Appliances of the simulated devices held on (true) or off (false), from `--sim-load NAME=on|off`. */
export type SimLoad = Readonly<Record<string, boolean>>;

export function parseSimLoad(texts: readonly string[]): SimLoad {
  const pins: Record<string, boolean> = {};
  for (const text of texts) {
    const m = /^([a-z0-9-]+)=(on|off)$/.exec(text);
    if (!m) throw new UsageError(`--sim-load '${text}': write APPLIANCE=on or APPLIANCE=off, e.g. heater=on`);
    pins[m[1]!] = m[2] === 'on';
  }
  return pins;
}

function simulated(scenario: ScenarioName, seed: number, speed: number, pins: SimLoad): PreparedDevice {
  const names = SCENARIO_SPECS[scenario].appliances.map((a) => a.name);
  const unknown = Object.keys(pins).filter((n) => !names.includes(n));
  if (unknown.length) throw new UsageError(`--sim-load ${unknown.join(', ')}: scenario ${scenario} has the appliances ${names.join(', ')}`);
  return {
    // A fresh boot_id per run (the device id stays, from the seed): a restart on the same database is a new
    // epoch of the same device, not a replay of the previous run's windows.
    session: (store) =>
      simulatedSession(store, new SimulatedDevice({ scenario, seed, speed, pins, bootEntropy: () => randomInt(2 ** 32) }), scenario),
    linkOpened: () => undefined,
    release: nothing,
  };
}

async function rtlTwin(io: Io): Promise<PreparedDevice> {
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

/**
 * Every attached crabwatt board but those `claimed` already by an explicit PATH. Alone (`--device auto`, the
 * default) it falls back to a board in its bootloader (waited for) or to the simulated device.
 */
async function attachedBoards(io: Io, claimed: ReadonlySet<string>, alone: boolean, fallback: () => PreparedDevice): Promise<PreparedDevice[]> {
  const found = await listDevices();
  const ours = found.filter((d) => d.mode === 'crabwatt' && d.path).map((d) => d.stablePath ?? d.path!);
  const fresh = ours.filter((p) => !claimed.has(deviceLockPath(p)));
  if (fresh.length > 0 || !alone) {
    if (fresh.length === 0) io.err('crabwatt: --device auto: no other crabwatt board attached\n');
    return fresh.map(claimPort);
  }
  if (found.some((d) => d.mode === 'bootloader')) {
    const detail = 'the board is in its bootloader (foboot): flash it with `crabwatt flash FILE.dfu`, or start the installed bitstream with `dfu-util -a 0 -e` (r0.1 stays in DFU until then; r0.2 also starts it when replugged without the button)';
    io.err(`crabwatt: ${detail}; waiting for it to come back as a crabwatt device\n`);
    return [{
      session: (store) =>
        new DeviceSession({
          kind: 'hardware', path: 'auto', store, defaultScale: HARDWARE_DEFAULT_SCALE,
          waitForDevice: true, initialState: { state: 'bootloader', detail },
        }),
      linkOpened: () => undefined,
      release: nothing,
    }];
  }
  io.err('crabwatt: no crabwatt board found: running the simulated device (use --device PATH for a board)\n');
  return [fallback()];
}

/**
 * Claims every device of `specs`; explicit ports first, so that `auto` leaves them to their own spec. On any
 * failure what was already claimed is released and the error goes on (DeviceLinkError, LockHeldError, CliError).
 */
export async function prepareDevices(
  specs: readonly DeviceSpec[], io: Io, defaultScenario: ScenarioName, speed: number, pins: SimLoad = {},
): Promise<PreparedDevice[]> {
  const prepared = new Map<DeviceSpec, PreparedDevice[]>();
  const claimed = new Set<string>();
  const order = [...specs].sort((a, b) => Number(a.kind === 'auto') - Number(b.kind === 'auto'));
  try {
    for (const spec of order) {
      if (spec.kind === 'port') {
        const key = deviceLockPath(spec.path);
        if (claimed.has(key)) throw new UsageError(`--device ${spec.path}: this port is given twice`);
        prepared.set(spec, [claimPort(spec.path)]);
        claimed.add(key);
      } else if (spec.kind === 'sim') prepared.set(spec, [simulated(spec.scenario, spec.seed, speed, pins)]);
      else if (spec.kind === 'rtl') prepared.set(spec, [await rtlTwin(io)]);
      else {
        // Only `auto` alone falls back to a sim, so seed 1 collides with no other.
        prepared.set(spec, await attachedBoards(io, claimed, specs.length === 1, () => simulated(defaultScenario, 1, speed, pins)));
      }
    }
  } catch (err) {
    for (const list of prepared.values()) for (const p of list) await p.release();
    throw err;
  }
  return specs.flatMap((s) => prepared.get(s) ?? []);
}
