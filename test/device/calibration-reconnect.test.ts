// Issue 10 item 6 at the protocol level: a board (the pretend device behind MockBinding, spoken to through the
// real DeviceSession, ingest, store and API wiring) is unplugged and comes back power-cycled, at its reset
// registers; the host pushes the stored calibration when the board identifies itself after the reconnect.

import { afterEach, describe, expect, it } from 'vitest';
import { wireApi } from '../../server/api/wire.ts';
import { DeviceSession, HARDWARE_DEFAULT_SCALE } from '../../server/cli/session.ts';
import type { Frame, FrameFields } from '../../server/protocol/codec.ts';
import { CALIBRATION_SOURCE, PROTOCOL_VERSION } from '../../server/protocol/definition.ts';
import { StoreReader } from '../../server/store/query.ts';
import { Store } from '../../server/store/store.ts';
import { tempDir } from '../store/helpers.ts';
import { MockDevice } from './mock-device.ts';

const RESET_REGISTERS = { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0 };

/** A board that answers cmd_identify and cmd_calibrate as the firmware does, and can be power-cycled. */
class Board {
  bootId = 1;
  configSeq = 0;
  registers = { ...RESET_REGISTERS };
  calibrations: FrameFields<'cmd_calibrate'>[] = [];

  constructor(readonly mock: MockDevice) {
    mock.autoAck = false;
    mock.onCommand = (f) => this.answer(f);
  }

  powerCycle(): void {
    this.bootId++;
    this.configSeq = 0;
    this.registers = { ...RESET_REGISTERS };
  }

  private answer(f: Frame): void {
    let value = 0;
    if (f.name === 'cmd_identify') this.identify();
    if (f.name === 'cmd_calibrate') {
      const fields = f.fields as FrameFields<'cmd_calibrate'>;
      this.calibrations.push(fields);
      this.registers = { ...fields };
      value = ++this.configSeq;
    }
    this.mock.send('ack', this.mock.nextSeq(), { command_seq: f.seq, command_type: f.type, status: 0, value });
  }

  private identify(): void {
    this.mock.send('identify', this.mock.nextSeq(), {
      device_id: 0xb0a4d000_00000001n, boot_id: this.bootId, board: 1, adc_part: 1, protocol_version: PROTOCOL_VERSION,
      gateware_version: 0, firmware_version: 0, sample_rate_num: 4_000_000, sample_rate_den: 1, capture_depth: 4096,
      config_seq: this.configSeq, mode: 0, cycles: 10, fixed_samples: 400_000, max_samples: 4_000_000, zc_hysteresis: 64,
      // A board without a saved record (or whose record the host's differs from) comes back at reset values.
      calibration_source: CALIBRATION_SOURCE.DEFAULTS,
      ...this.registers,
    });
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setTimeout(r, 5));
}

describe('calibration across a reconnect (protocol-level mock board)', () => {
  it('pushes the stored calibration to a board that comes back at its reset registers', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const store = Store.open(`${dir}/board.sqlite`);
    cleanups.push(() => store.close());
    const path = `/dev/ttyMOCKCAL${process.pid}`;
    const board = new Board(new MockDevice(path));
    const session = new DeviceSession({ kind: 'hardware', path, store, defaultScale: HARDWARE_DEFAULT_SCALE, binding: board.mock.binding });
    session.on('link-error', () => undefined);
    const wired = wireApi({
      reader: new StoreReader(store.db),
      devices: [{ ingest: session.ingest, link: session, kind: session.kind, path: session.path }],
    });
    cleanups.push(() => session.close());
    cleanups.push(() => wired.close());
    await session.start();
    await until(() => session.ingest.deviceId !== undefined);
    const id = session.ingest.deviceId!;
    // The first identify seeds the stored calibration: nothing to push.
    expect(board.calibrations).toEqual([]);
    expect(wired.devices.calibration(id).configSeq).toBe(0);

    const cal = { v_offset: 5, i_offset: -3, v_gain: 16420, i_gain: 16350, phase: -2048, kv: 0.05, ki: 0.004 };
    expect(await wired.devices.setCalibration(id, cal)).toEqual({ configSeq: 1 });

    board.mock.unplug();
    await until(() => session.state === 'reconnecting');
    board.powerCycle();
    board.mock.plugIn();
    await until(() => board.calibrations.length === 2);
    const { kv: _kv, ki: _ki, ...registers } = cal;
    expect(board.calibrations[1]).toEqual(registers);
    expect(board.registers).toEqual(registers);
    await until(() => wired.devices.calibration(id).configSeq !== null);
    expect(wired.devices.calibration(id)).toEqual({ calibration: cal, configSeq: 1 });
  });
});
