// Issue 10 item 6 with the simulated device behind the real link, ingest, store and API wiring: a device that
// resets comes back at gain 1.0, the host pushes the stored calibration again, and the API's config_seq is
// the one the windows measured with it carry.

import { afterEach, describe, expect, it } from 'vitest';
import { wireApi } from '../../server/api/wire.ts';
import { simulatedSession } from '../../server/cli/session.ts';
import type { FrameFields } from '../../server/protocol/codec.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';
import { SAMPLE_RATE_HZ } from '../../server/sim/load.ts';
import { StoreReader } from '../../server/store/query.ts';
import { Store } from '../../server/store/store.ts';
import { tempDir } from '../store/helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Yields to the event loop until `done` holds (the link delivers bytes asynchronously); no deadline. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
}

describe('calibration across a device reset (simulated device)', () => {
  it('pushes the stored calibration again on the new boot; GET and the windows agree on config_seq', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const store = Store.open(`${dir}/sim.sqlite`);
    cleanups.push(() => store.close());
    const device = new SimulatedDevice({ seed: 77 });
    const session = simulatedSession(store, device, 'mains-230-50');
    const logs: string[] = [];
    const wired = wireApi({
      reader: new StoreReader(store.db),
      devices: [{ ingest: session.ingest, link: session, kind: session.kind, path: session.path }],
      log: (m) => logs.push(m),
    });
    cleanups.push(() => session.close());
    cleanups.push(() => wired.close());
    const identifies: FrameFields<'identify'>[] = [];
    session.ingest.on('identify', (e: { frame: FrameFields<'identify'> }) => identifies.push(e.frame));
    await session.link.open();
    await until(() => identifies.length > 0);
    const id = session.ingest.deviceId!;

    const cal = { v_offset: 20, i_offset: -8, v_gain: 16600, i_gain: 16100, phase: 4096, kv: device.kv * 1.02, ki: device.ki };
    const put = await wired.devices.setCalibration(id, cal);
    expect(put.configSeq).toBe(1);
    expect(wired.devices.calibration(id)).toEqual({ calibration: cal, configSeq: 1 });

    const oldBoot = identifies.at(-1)!.boot_id;
    device.reset();
    await until(() => identifies.at(-1)!.boot_id !== oldBoot);
    // The new boot reported the reset values; the stored calibration is pushed and acked.
    expect(identifies.at(-1)).toMatchObject({ v_gain: 16384, i_gain: 16384, config_seq: 0 });
    await until(() => wired.devices.calibration(id).configSeq !== null);
    const after = wired.devices.calibration(id);
    expect(after).toEqual({ calibration: cal, configSeq: 1 });
    expect(logs).toContainEqual(expect.stringMatching(/pushed the stored registers/));
    await session.request('cmd_identify', {});
    expect(identifies.at(-1)).toMatchObject({ v_offset: 20, i_offset: -8, v_gain: 16600, i_gain: 16100, phase: 4096, config_seq: 1 });

    const windows: { config_seq: number }[] = [];
    session.ingest.on('window', (w: { config_seq: number }) => windows.push(w));
    device.advance(SAMPLE_RATE_HZ);
    await until(() => windows.length >= 3);
    // After the CONFIG window of the push, every window of this boot is measured with the calibration.
    expect(windows.at(-1)!.config_seq).toBe(after.configSeq);
  });
});
