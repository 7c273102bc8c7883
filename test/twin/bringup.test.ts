// `crabwatt bringup` against the RTL twin (real firmware and gateware, Verilator), whose harness models
// the AD7357's read timing (hdl/twin/adc_read.h) with the I/O round trip and t4 given here: the
// capture-point scan finds the eye where the reset READ_DELAY (43) reads right, where it reads every
// code halved with no frame error (the fault of issue 11), and fails with the bench advice where no
// setting can read. Inputs shorted: mid-scale codes with ±2 LSB of noise.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bringupCommand } from '../../server/cli/bringup.ts';
import { DeviceLink } from '../../server/device/link.ts';
import { WINDOW_MODE } from '../../server/protocol/definition.ts';
import { buildRtlTwin, startRtlTwin, type RtlTwin } from '../../server/twin/rtl.ts';

let twin: RtlTwin | null = null;

beforeAll(async () => {
  await buildRtlTwin({ log: (line) => process.stderr.write(`${line}\n`) });
}, 20 * 60_000);

afterEach(async () => {
  await twin?.close();
  twin = null;
});

const SHORTED = { cv: [8190, 8193, 8192, 8194, 8191, 8192, 8190, 8193], ci: [8192, 8191, 8194, 8192, 8190, 8193, 8192, 8191] };

async function bringupOnTwin(adc: { roundTripNs?: number; t4Ns?: number }) {
  twin = await startRtlTwin({ build: false, codes: SHORTED, adc });
  // Short fixed windows, so the live step has one soon (with shorted inputs cycle windows would
  // close only at max_samples, a simulated second).
  const link = new DeviceLink({ path: twin.path, reconnect: false, identifyOnConnect: false, requestTimeoutMs: 10_000 });
  await link.open();
  await link.request('cmd_configure', { mode: WINDOW_MODE.FIXED, cycles: 10, fixed_samples: 20_000, max_samples: 4_000_000, zc_hysteresis: 64 });
  await link.close();
  const out: string[] = [];
  const code = await bringupCommand(['--device', twin.path, '--inputs', 'shorted', '--from', '0', '--to', '128', '--step', '8', '--pairs', '64', '--timeout-s', '300'],
    { out: (s) => out.push(s), err: () => {} });
  const text = out.join('');
  const summary = JSON.parse(text.trim().split('\n').at(-1)!) as { ok: boolean; steps: Record<string, string>; read_delay: number | null; eye: { eye: string } };
  return { code, text, summary };
}

describe('crabwatt bringup on the RTL twin', () => {
  it('a 2 ns round trip: the eye holds the reset READ_DELAY, every step passes', async () => {
    const { code, text, summary } = await bringupOnTwin({ roundTripNs: 2 });
    expect(summary.steps).toEqual({ identity: 'PASS', link: 'PASS', scan: 'PASS', codes: 'PASS', noise: 'PASS', rate: 'SKIP', live: 'PASS' });
    expect(code).toBe(0);
    // Passing settings 32, 40, 48 (the model's eye is 31..55: hdl/README.md); the middle is 40.
    expect(summary.eye.eye).toBe(`....#^#${'.'.repeat(9)}`);
    expect(summary.read_delay).toBe(40);
    expect(text).toMatch(/PASS {2}scan: read_delay 0\.\.127 step 8/);
  }, 10 * 60_000);

  it('a 14 ns round trip: the reset READ_DELAY reads halved codes; the scan moves it and the codes come out right', async () => {
    const { code, text, summary } = await bringupOnTwin({ roundTripNs: 14 });
    expect(summary.steps).toMatchObject({ scan: 'PASS', codes: 'PASS', noise: 'PASS', live: 'PASS' });
    expect(code).toBe(0);
    // The eye moved by 12 ns, 55 settings, to 86..110: 88, 96, 104 pass here.
    expect(summary.read_delay).toBe(96);
    expect(summary.eye.eye).toBe(`${'.'.repeat(11)}#^#..`);
    expect(text).toContain('READ_DELAY set to 96 (was 43)');
    expect(text).toMatch(/voltage: mean code 819[0-4]/);
  }, 10 * 60_000);

  it('t4 beyond a period: no setting reads right, the scan fails with the bench advice and the exit code says so', async () => {
    const { code, text, summary } = await bringupOnTwin({ roundTripNs: 2, t4Ns: 17 });
    expect(summary.steps.scan).toBe('FAIL');
    expect(summary.read_delay).toBe(null);
    expect(code).toBe(1);
    expect(text).toMatch(/check: No capture point reads the inputs right/);
    expect(text).toContain('SDATA_A on CIPO');
  }, 10 * 60_000);
});
