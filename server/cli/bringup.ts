// `crabwatt bringup`: the guided first power-up of a board with the ADC wing (server/device/bringup.ts
// runs the steps; this prints them). docs/hardware-setup.md "Bring-up" is the procedure.

import { DeviceLink } from '../device/link.ts';
import { runBringup, type BringupReport, type Inputs } from '../device/bringup.ts';
import { ADC_DELAY } from '../protocol/definition.ts';
import { SimulatedDevice } from '../sim/device.ts';
import { attachToMockBinding } from '../sim/transport.ts';
import { HARDWARE_DEFAULT_SCALE } from './session.ts';
import { CliError, parseCommandArgs, parseNumber, str, toJson, UsageError, type Io } from './common.ts';

export const BRINGUP_HELP = `crabwatt bringup --inputs shorted|dc:V,I [--device auto|sim|PATH] [--from N] [--to N] [--step N] [--pairs N] [--timeout-s S] [--json]

Guided first power-up with the ADC wing attached. Steps, each PASS or FAIL (with what to check on the
bench when it fails), SKIP where it cannot apply:
  identity  device_id (the flash's unique ID), firmware and gateware versions, calibration source
  link      a few commands answered with no frame damaged, missing or dropped
  scan      the ADC capture point: every READ_DELAY from --from (0) below --to (192) in steps of --step (1)
            is set, and a few hundred raw code pairs and the leading-zero errors are judged as
            hdl/crabwatt/adc_timing.py does (--pairs per setting, default 256); prints the eye (# pass, . fail, ^ chosen) and sets its middle
  codes     mean codes against what the inputs must give (shorted: mid-scale 8192; dc:V,I: V volts and
            I amperes at the wing's default scale)
  noise     LSB rms around that mean
  rate      the sample rate against this host's clock over 5 s (a 48 MHz crystal's ±50 ppm plus USB jitter)
  live      a short reading: V, I, P, f
The raw codes come from captures at identity calibration; the device's calibration is put back after.
The chosen READ_DELAY is set, not saved on the board: a reset returns the default (43), see
docs/hardware-setup.md "Bring-up". The last line is a JSON summary (--json: only that line); the exit code is 1
when any step failed.
  --pairs   raw pairs per setting in the scan, and (x4) for the codes and noise steps
  --timeout-s  how long an answer may take before its step fails (default 10; the RTL twin on a busy
            machine needs more)
  --device  auto (default): the attached crabwatt board; PATH: a serial port (the RTL twin's pty);
            sim: the simulated device with shorted inputs (a demonstration)
`;

export function parseInputs(text: string | undefined): Inputs {
  if (text === 'shorted') return { kind: 'shorted' };
  const dc = /^dc:([^,]+),([^,]+)$/.exec(text ?? '');
  if (dc) {
    const volts = parseNumber('inputs', dc[1], 0, Number.isFinite, 'dc:V,I takes two numbers, volts and amperes');
    const amps = parseNumber('inputs', dc[2], 0, Number.isFinite, 'dc:V,I takes two numbers, volts and amperes');
    return { kind: 'dc', volts, amps };
  }
  throw new UsageError(`bringup: --inputs ${text === undefined ? 'is required' : `'${text}' is neither`}: say how the ` +
    'wing\'s inputs are connected, `shorted` (both inputs shorted at the terminals) or `dc:V,I` (a known DC, e.g. dc:12,0.5)');
}

export function printReport(report: BringupReport, io: Io, json: boolean): void {
  if (!json) {
    for (const s of report.steps) {
      io.out(`${s.status.padEnd(4)}  ${s.step}: ${s.lines[0] ?? ''}\n`);
      for (const line of s.lines.slice(1)) io.out(`      ${' '.repeat(s.step.length + 2)}${line}\n`);
      if (s.status === 'FAIL' && s.advice) io.out(`      check: ${s.advice}\n`);
    }
  }
  io.out(`${toJson(report.summary)}\n`);
}

export async function bringupCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseCommandArgs('bringup', argv, {
    device: { type: 'string' }, inputs: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' },
    step: { type: 'string' }, pairs: { type: 'string' }, 'timeout-s': { type: 'string' }, json: { type: 'boolean' },
  });
  if (values['help']) {
    io.out(BRINGUP_HELP);
    return 0;
  }
  const inputs = parseInputs(str(values, 'inputs'));
  const setting = (n: number) => Number.isInteger(n) && n >= 0 && n <= ADC_DELAY.MAX + 1;
  const from = parseNumber('from', str(values, 'from'), 0, setting, `a READ_DELAY, 0..${ADC_DELAY.MAX}`);
  const to = parseNumber('to', str(values, 'to'), 192, (n) => setting(n) && n > from, `above --from, at most ${ADC_DELAY.MAX + 1}`);
  const step = parseNumber('step', str(values, 'step'), 1, (n) => Number.isInteger(n) && n >= 1, 'a whole number of settings, 1 or more');
  const scanPairs = parseNumber('pairs', str(values, 'pairs'), 256, (n) => Number.isInteger(n) && n >= 2 && n <= 4096,
    'raw pairs judged per setting, 2..4096');
  const timeoutMs = 1000 * parseNumber('timeout-s', str(values, 'timeout-s'), 10, (n) => n > 0 && n <= 3600, 'seconds, above 0');
  const json = values['json'] === true;
  const device = str(values, 'device') ?? 'auto';

  let sim: { device: SimulatedDevice; detach: () => void } | null = null;
  let link: DeviceLink;
  let scale = HARDWARE_DEFAULT_SCALE;
  if (device === 'sim') {
    const simulated = new SimulatedDevice({ adc: { shorted: inputs.kind === 'shorted' } });
    const attached = attachToMockBinding(simulated, `/dev/crabwatt-bringup-${process.pid}`);
    sim = { device: simulated, detach: attached.detach };
    link = new DeviceLink({ path: attached.path, binding: attached.binding, reconnect: false });
    scale = { kv: simulated.kv, ki: simulated.ki };
  } else {
    link = new DeviceLink({ path: device, reconnect: false, identifyOnConnect: false });
  }
  try {
    try {
      await link.open();
    } catch (err) {
      throw new CliError(`cannot open ${device === 'auto' ? 'the board' : device}: ${(err as Error).message}`);
    }
    sim?.device.start();
    const report = await runBringup(link, {
      inputs, scale, scan: { from, to, step }, scanPairs, codePairs: Math.min(4 * scanPairs, 4096),
      requestTimeoutMs: timeoutMs, liveTimeoutMs: timeoutMs,
      progress: json ? () => {} : (line) => io.err(`  scan ${line}\n`),
    });
    printReport(report, io, json);
    return report.ok ? 0 : 1;
  } finally {
    sim?.device.stop();
    await link.close();
    sim?.detach();
  }
}
