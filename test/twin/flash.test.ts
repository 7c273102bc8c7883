// The firmware's flash, end to end in the RTL twin: the real SoC's SPI master and the real firmware
// against the harness's flash model (firmware/test/flash_model.c), bytes through the pseudo-terminal.
// The flash image is kept in a file between runs, so a run that ends with cmd_reboot (the harness
// stops when the firmware pulls PROGRAMN) and the next run are a board before and after its reboot.
// The twin is built without the DSP (build/twin/flash): identity, calibration and reboot need only
// the SoC.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, type Frame } from '../../server/protocol/codec.ts';
import { ACK_STATUS, CALIBRATION_SOURCE } from '../../server/protocol/definition.ts';
import { buildRtlTwin, startRtlTwin } from '../../server/twin/rtl.ts';

const BUILD_DIR = 'build/twin/flash';
const FLASH_BYTES = 16 << 20;
const USER_AREA = FLASH_BYTES - 0x2000; // regmap.FLASH_USER_BYTES at the end of the r0.2's 16 MiB
const CAL_A = { v_offset: -12, i_offset: 7, v_gain: 17000, i_gain: 15000, phase: -98304 };
const CAL_B = { v_offset: 3, i_offset: -4, v_gain: 16000, i_gain: 16500, phase: 65536 };

const work = mkdtempSync(join(tmpdir(), 'crabwatt-flash-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(async () => {
  await buildRtlTwin({ buildDir: BUILD_DIR, dsp: false, log: (line) => process.stderr.write(`${line}\n`) });
}, 20 * 60_000);

/** One run of the twin: a board powered up with the flash as the file holds it. */
async function board(flashFile: string, flashUid: bigint) {
  const twin = await startRtlTwin({ buildDir: BUILD_DIR, build: false, flashFile, flashUid, loop: true });
  const port = new SerialPort({ path: twin.path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  const waiters: (() => void)[] = [];
  port.on('data', (chunk: Buffer) => {
    frames.push(...decoder.push(chunk));
    waiters.splice(0).forEach((w) => w());
  });
  // Waits for events; the bound only turns a hang into a message.
  const waitFor = async <T>(find: () => T | undefined, what: string): Promise<T> => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 200); });
    }
  };
  let seq = 1;
  const request = async <N extends 'cmd_identify' | 'cmd_calibrate' | 'cmd_reboot'>(
    name: N, fields: Parameters<typeof encodeFrame<N>>[2]) => {
    const s = ++seq;
    port.write(encodeFrame(name, s, fields));
    const ack = await waitFor(() => frames.find((f): f is Frame<'ack'> => f.name === 'ack' && f.fields.command_seq === s),
      `the ack of ${name}`);
    expect(ack.fields.status).toBe(ACK_STATUS.OK);
    return frames.indexOf(ack);
  };
  const identify = async () => {
    const at = await request('cmd_identify', {});
    return (frames[at - 1] as Frame<'identify'>).fields;
  };
  /** Asks until the firmware has saved the calibration (the erase takes 45 ms of twin time). */
  const identifyWhenSaved = async () => {
    for (;;) {
      const id = await identify();
      if (id.calibration_source !== CALIBRATION_SOURCE.HOST_UNSAVED) return id;
    }
  };
  /** cmd_reboot: acked, then the firmware pulls PROGRAMN and the harness ends, writing the flash file. */
  const reboot = async () => {
    await request('cmd_reboot', {});
    const exit = await twin.exited;
    expect(exit.code).toBe(0);
    await new Promise<void>((r) => port.close(() => r()));
  };
  const close = async () => {
    if (port.isOpen) await new Promise<void>((r) => port.close(() => r()));
    await twin.close();
  };
  return { identify, identifyWhenSaved, request, reboot, close, decoder };
}

describe('RTL twin: the configuration flash', () => {
  it('device_id is the flash unique ID; a calibration survives cmd_reboot; the host push wins; a bad record is flagged', async () => {
    const flashFile = join(work, 'flash-a.bin');
    const uidA = 0xa1b2c3d4e5f60718n;

    // A new board: blank flash, reset calibration, its flash's ID.
    let b = await board(flashFile, uidA);
    try {
      let id = await b.identify();
      expect(id.device_id).toBe(uidA);
      expect(id).toMatchObject({ calibration_source: CALIBRATION_SOURCE.DEFAULTS, v_gain: 16384, phase: 0 });
      await b.request('cmd_calibrate', CAL_A);
      id = await b.identifyWhenSaved();
      expect(id).toMatchObject({ ...CAL_A, calibration_source: CALIBRATION_SOURCE.HOST_SAVED });
      await b.reboot();
      expect(b.decoder.counters).toMatchObject({ crcErrors: 0, framingErrors: 0 });
    } finally {
      await b.close();
    }
    const image = readFileSync(flashFile);
    expect(image.length).toBe(FLASH_BYTES);
    expect(image.readUInt32LE(USER_AREA)).toBe(0x4c435743); // "CWCL" in the user area's first sector

    // After the reboot: the record is applied at boot, before any host command.
    b = await board(flashFile, uidA);
    try {
      let id = await b.identify();
      expect(id).toMatchObject({ ...CAL_A, calibration_source: CALIBRATION_SOURCE.FLASH, device_id: uidA });
      // The host's stored calibration differs: it re-pushes it, and it wins (applied and saved).
      await b.request('cmd_calibrate', CAL_B);
      id = await b.identifyWhenSaved();
      expect(id).toMatchObject({ ...CAL_B, calibration_source: CALIBRATION_SOURCE.HOST_SAVED });
      await b.reboot();
    } finally {
      await b.close();
    }

    b = await board(flashFile, uidA);
    try {
      expect(await b.identify()).toMatchObject({ ...CAL_B, calibration_source: CALIBRATION_SOURCE.FLASH });
    } finally {
      await b.close();
    }

    // A second board (another flash) is another device, with its own (blank) calibration.
    const other = await board(join(work, 'flash-b.bin'), 0x0102030405060708n);
    try {
      expect(await other.identify()).toMatchObject({ device_id: 0x0102030405060708n, calibration_source: CALIBRATION_SOURCE.DEFAULTS });
    } finally {
      await other.close();
    }

    // Both sectors damaged: reset values and the flag, not a wrong calibration.
    const damaged = readFileSync(flashFile);
    for (const at of [USER_AREA + 16, USER_AREA + 0x1000 + 16]) damaged.writeUInt8(damaged.readUInt8(at) ^ 0x01, at);
    writeFileSync(flashFile, damaged);
    b = await board(flashFile, uidA);
    try {
      expect(await b.identify()).toMatchObject({ v_gain: 16384, phase: 0, calibration_source: CALIBRATION_SOURCE.BAD_RECORD });
    } finally {
      await b.close();
    }
  }, 10 * 60_000);
});
