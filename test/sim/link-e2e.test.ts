// The simulated device reached the way hardware is: through DeviceLink, over a MockBinding port and
// over a real pseudo-terminal.
import { afterEach, describe, expect, it } from 'vitest';
import type { Frame } from '../../server/protocol/codec.ts';
import { ACK_STATUS, BOARD, WINDOW_FLAG, WINDOW_MODE } from '../../server/protocol/definition.ts';
import { DeviceLink } from '../../server/device/link.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';
import { attachToMockBinding, startPtySim } from '../../server/sim/transport.ts';
import { SAMPLE_RATE_HZ } from '../../server/sim/load.ts';

const FS = SAMPLE_RATE_HZ;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function collect(link: DeviceLink) {
  const frames: Frame[] = [];
  link.on('frame', (f) => frames.push(f));
  const until = async (done: () => boolean): Promise<void> => {
    while (!done()) await new Promise((r) => setTimeout(r, 5));
  };
  return { frames, until };
}

/**
 * Within one boot: windows tile the stream, and each energy snapshot exceeds the first one seen by
 * exactly the Σ sum_vi of the windows in between (the host may connect after boot).
 */
function checkBoot(frames: Frame[]): void {
  let end: bigint | null = null;
  let base: bigint | null = null;
  let sinceBase = 0n;
  let snapshots = 0;
  for (const f of frames) {
    if (f.name === 'window') {
      if (end !== null) expect(f.fields.end_index - BigInt(f.fields.samples)).toBe(end);
      end = f.fields.end_index;
      if (base !== null) sinceBase += f.fields.sum_vi;
    }
    if (f.name === 'energy') {
      expect(f.fields.end_index).toBe(end);
      if (base === null) base = f.fields.energy;
      else expect(f.fields.energy - base).toBe(sinceBase);
      snapshots++;
    }
  }
  expect(snapshots).toBeGreaterThanOrEqual(2);
}

describe('simulated device through DeviceLink', () => {
  it('MockBinding: frames, acked commands, a device reset seen as a reset', async () => {
    const sim = new SimulatedDevice({ seed: 21 });
    const attached = attachToMockBinding(sim, '/dev/ttySIMLINK');
    const link = new DeviceLink({ path: attached.path, binding: attached.binding, reconnect: false });
    cleanups.push(() => link.close());
    const resets: number[] = [];
    link.on('reset', (r) => resets.push(r.bootId));
    const { frames, until } = collect(link);
    await link.open();
    await until(() => frames.some((f) => f.name === 'ack'));

    sim.advance(2 * FS);
    const configured = link.request('cmd_configure', {
      mode: WINDOW_MODE.FIXED, cycles: 10, fixed_samples: 200_000, max_samples: FS, zc_hysteresis: 64,
    });
    // The command reaches the device when the host's write completes; the device then answers.
    await until(() => frames.filter((f) => f.name === 'ack').length >= 2);
    const ack = await configured;
    expect(ack.fields.status).toBe(ACK_STATUS.OK);
    expect(ack.fields.value).toBe(1);
    sim.advance(FS);
    await until(() => frames.filter((f) => f.name === 'status').length >= 3);

    const windows = frames.filter((f): f is Frame<'window'> => f.name === 'window');
    const configuredWindows = windows.filter((w) => w.fields.config_seq === 1);
    expect(configuredWindows.length).toBe(20);
    expect(configuredWindows.every((w) => w.fields.samples === 200_000)).toBe(true);
    expect(windows.find((w) => (w.fields.flags & WINDOW_FLAG.CONFIG) !== 0)).toBeDefined();
    let energy = 0n;
    for (const f of frames) {
      if (f.name === 'window') energy += f.fields.sum_vi;
      if (f.name === 'energy') expect(f.fields.energy).toBe(energy);
    }
    expect(link.counters).toMatchObject({ seqGaps: 0, crcErrors: 0, framingErrors: 0, resets: 0 });

    const oldBoot = sim.bootId;
    sim.reset();
    sim.advance(FS / 2);
    await until(() => resets.length > 0);
    expect(resets).toEqual([sim.bootId]);
    expect(sim.bootId).not.toBe(oldBoot);
    expect(link.counters.resets).toBe(1);
    const identify = frames.filter((f): f is Frame<'identify'> => f.name === 'identify').at(-1)!;
    expect(identify.fields.boot_id).toBe(sim.bootId);
    expect(identify.fields.board).toBe(BOARD.SIMULATED);
  });

  it('pty (socat): the link opens a /dev/pts path and gets a paced device with acks', async () => {
    const sim = new SimulatedDevice({ seed: 22, speed: 50 });
    const pty = await startPtySim(sim);
    cleanups.push(() => pty.close());
    cleanups.push(() => sim.stop());
    const link = new DeviceLink({ path: pty.path, reconnect: false, requestTimeoutMs: 5000 });
    cleanups.push(() => link.close());
    const { frames, until } = collect(link);
    await link.open();
    sim.start();
    // identifyOnConnect: the link asks, the device answers.
    await until(() => frames.some((f) => f.name === 'identify') && frames.filter((f) => f.name === 'window').length >= 5);
    const ack = await link.request('cmd_status', {});
    expect(ack.fields.status).toBe(ACK_STATUS.OK);
    checkBoot(frames);
    expect(link.counters.crcErrors + link.counters.framingErrors).toBe(0);
  });
});
