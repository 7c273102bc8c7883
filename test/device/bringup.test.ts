// `crabwatt bringup`'s steps against the simulated device, whose ADC read path has an eye
// (server/sim/adc-front.ts): the scan finds it wherever it is, or fails with the bench advice.
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceLink } from '../../server/device/link.ts';
import { eyeRow, judgeRate, runBringup, type BringupOptions } from '../../server/device/bringup.ts';
import { SimulatedDevice, type SimulatedDeviceOptions } from '../../server/sim/device.ts';
import { attachToMockBinding } from '../../server/sim/transport.ts';
import type { Frame } from '../../server/protocol/codec.ts';
import { WINDOW_MODE } from '../../server/protocol/definition.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let ports = 0;
async function bringup(sim: SimulatedDeviceOptions, options: Partial<BringupOptions> = {}) {
  // Slowed down (the scan needs few samples): the DSP model at 4 Msps would keep a core busy. Short
  // fixed windows, so the live step has one soon whatever the inputs.
  const device = new SimulatedDevice({ seed: 7, speed: 0.02, ...sim,
    bootConfig: { mode: WINDOW_MODE.FIXED, fixed_samples: 4000, ...sim.bootConfig } });
  const attached = attachToMockBinding(device, `/dev/ttyBRINGUP${++ports}`);
  const link = new DeviceLink({ path: attached.path, binding: attached.binding, reconnect: false });
  cleanups.push(async () => {
    device.stop();
    await link.close();
    attached.detach();
  });
  await link.open();
  device.start();
  const report = await runBringup(link, {
    inputs: { kind: 'shorted' }, scale: { kv: device.kv, ki: device.ki },
    scan: { from: 0, to: 128, step: 4 }, liveWindows: 1, ...options,
  });
  const identify = new Promise<Frame<'identify'>>((resolve) => link.on('frame', (f) => f.name === 'identify' && resolve(f)));
  await link.request('cmd_identify', {});
  return { report, device, identify: await identify, link };
}

const status = (report: Awaited<ReturnType<typeof bringup>>['report']) =>
  Object.fromEntries(report.steps.map((s) => [s.step, s.status]));

describe('crabwatt bringup on the simulated device', () => {
  it('finds an eye away from the default, sets its middle, reads mid-scale and puts the calibration back', async () => {
    const calibration = { v_offset: 12, i_offset: -8, v_gain: 17000, i_gain: 15000, phase: 0 };
    const { report, identify, link } = await bringup({ adc: { shorted: true, eye: { first: 60, last: 90 } }, bootConfig: calibration });
    expect(status(report)).toEqual({ identity: 'PASS', link: 'PASS', scan: 'PASS', codes: 'PASS', noise: 'PASS', rate: 'SKIP', live: 'PASS' });
    expect(report.ok).toBe(true);
    // Settings 60, 64, ... 88 pass: 8 of them, the middle is 72; 43 (the default) read halved codes.
    expect(report.summary.read_delay).toBe(72);
    expect((report.summary.eye as { eye: string }).eye).toBe('...............###^####.........');
    const ack = await link.request('cmd_adc_delay', { read_delay: 0xffff });
    expect(ack.fields.value & 0xff).toBe(72);
    expect(identify.fields).toMatchObject(calibration);
    const scan = report.steps.find((s) => s.step === 'scan')!;
    expect(scan.lines.join('\n')).toContain('READ_DELAY set to 72 (was 43)');
  });

  it('fails the scan with the bench advice when no setting reads right, and leaves READ_DELAY as it was', async () => {
    const { report, link } = await bringup({ adc: { shorted: true, eye: { first: 200, last: 255 } } });
    expect(report.ok).toBe(false);
    const scan = report.steps.find((s) => s.step === 'scan')!;
    expect(scan.status).toBe('FAIL');
    expect(scan.advice).toMatch(/SDATA_A on CIPO/);
    expect(scan.lines.join('\n')).toContain('no setting passed (off mid-scale)');
    expect(report.summary.read_delay).toBe(null);
    expect((await link.request('cmd_adc_delay', { read_delay: 0xffff })).fields.value & 0xff).toBe(43);
    // The default reads halved codes: the codes step says so too.
    expect(report.steps.find((s) => s.step === 'codes')!.status).toBe('FAIL');
  });

  it('judges against a known DC instead of mid-scale', async () => {
    // The sim's dc scenario is not a fixed DC: with shorted inputs a DC of 0 V, 0 A is mid-scale,
    // and a DC the inputs do not have fails the codes step (every setting reads steady but off).
    const { report } = await bringup({ adc: { shorted: true } }, { inputs: { kind: 'dc', volts: 0, amps: 0 } });
    expect(report.steps.find((s) => s.step === 'codes')!.status).toBe('PASS');
    const off = await bringup({ adc: { shorted: true } }, { inputs: { kind: 'dc', volts: 100, amps: 0 } });
    expect(off.report.steps.find((s) => s.step === 'scan')!.status).toBe('FAIL');
    expect(off.report.steps.find((s) => s.step === 'codes')!.advice).toMatch(/DC source/);
  });
});

describe('eyeRow', () => {
  it('marks passing settings, failing ones and the chosen', () => {
    const v = (readDelay: number, ok: boolean) => ({ readDelay, ok, reason: '' });
    expect(eyeRow([v(0, false), v(1, true), v(2, true), v(3, true), v(4, false)], 2)).toBe('.#^#.');
  });
});

describe('judgeRate', () => {
  const at = (index: number, ms: number) => ({ firstIndex: BigInt(index), arrivedMs: ms });
  it('passes a 4 Msps clock seen with delivery jitter, within the crystal plus jitter tolerance', () => {
    // 5 s; the second capture arrived 3 ms late.
    const r = judgeRate(at(1000, 100), at(1000 + 20_000_000, 5103), 4e6, 5);
    expect(r.ok).toBe(true);
    expect(r.tolerancePpm).toBeCloseTo(50 + 1e7 / 5003, 6);
  });
  it('fails a clock off by 0.5 % (a wrong PLL or oscillator)', () => {
    const r = judgeRate(at(0, 0), at(20_100_000, 5000), 4e6, 5);
    expect(r.ok).toBe(false);
    expect(r.ppm).toBeCloseTo(5000, 0);
  });
});
