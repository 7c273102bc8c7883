// serve --adc-read-delay N with the simulated device behind the real link, ingest and API wiring: the capture
// point is set at the first boot and set again after a reset, which returns the board's default (43).

import { afterEach, describe, expect, it } from 'vitest';
import { AdcDelayKeeper } from '../../server/api/adc-delay.ts';
import { wireApi } from '../../server/api/wire.ts';
import { simulatedSession } from '../../server/cli/session.ts';
import type { FrameFields } from '../../server/protocol/codec.ts';
import { ADC_DELAY } from '../../server/protocol/definition.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';
import { StoreReader } from '../../server/store/query.ts';
import { Store } from '../../server/store/store.ts';
import { tempDir } from '../store/helpers.ts';
import { EventEmitter } from 'node:events';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Yields to the event loop until `done` holds (the link delivers bytes asynchronously); no deadline. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
}

describe('the ADC capture point chosen at bring-up', () => {
  it('is set at every boot of the device, since a reset returns the default', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const store = Store.open(`${dir}/sim.sqlite`);
    cleanups.push(() => store.close());
    const device = new SimulatedDevice({ seed: 78 });
    const session = simulatedSession(store, device, 'mains-230-50');
    const logs: string[] = [];
    const wired = wireApi({
      reader: new StoreReader(store.db),
      devices: [{ ingest: session.ingest, link: session, kind: session.kind, path: session.path, adcReadDelay: 61 }],
      log: (m) => logs.push(m),
    });
    cleanups.push(() => session.close());
    cleanups.push(() => wired.close());
    const identifies: FrameFields<'identify'>[] = [];
    session.ingest.on('identify', (e: { frame: FrameFields<'identify'> }) => identifies.push(e.frame));
    const readDelay = async (): Promise<number> =>
      (await session.request('cmd_adc_delay', { read_delay: ADC_DELAY.KEEP })).fields.value & ADC_DELAY.VALUE_MASK;
    const setLogs = () => logs.filter((m) => /capture point READ_DELAY 61 set/.test(m)).length;

    await session.link.open();
    await until(() => setLogs() === 1);
    expect(await readDelay()).toBe(61);

    const oldBoot = identifies.at(-1)!.boot_id;
    device.reset();
    await until(() => identifies.at(-1)!.boot_id !== oldBoot);
    await until(() => setLogs() === 2);
    expect(await readDelay()).toBe(61);
    // An identify of the same boot (a host asking) does not send it again.
    await session.request('cmd_identify', {});
    expect(setLogs()).toBe(2);
  });

  it('refuses a capture point the register cannot hold', () => {
    expect(() => new AdcDelayKeeper(new EventEmitter(), 256, async () => 0, () => undefined)).toThrow(/0 to 255/);
    expect(() => new AdcDelayKeeper(new EventEmitter(), 1.5, async () => 0, () => undefined)).toThrow(RangeError);
  });
});
