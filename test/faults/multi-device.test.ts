// Several devices in one `serve`: a board-like device on a real pseudo-terminal (the simulated device behind
// socat, as /dev/ttyACM0 would be) and two simulated devices, all stored in one database, each with its own
// epochs and energy ledger. A second serve asking for the same port is refused by that port's lock, and when
// one link dies the others keep storing.

import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedDevice } from '../../server/sim/device.ts';
import { startPtySim, type PtySim } from '../../server/sim/transport.ts';
import { getJson, runCli, scratchDir, startServe, until, type ServeProcess } from './serve-process.ts';

interface DeviceJson {
  id: string;
  kind: string;
  state: string;
  counters: { windows: number };
}

const hex = (id: bigint) => id.toString(16).padStart(16, '0');

describe('several devices in one serve', () => {
  const scratch = scratchDir('crabwatt-multi-');
  const db = join(scratch.dir, 'crabwatt.sqlite');
  const board = new SimulatedDevice({ scenario: 'mains-120-60', seed: 77, speed: 1 });
  let pty: PtySim;
  let serve: ServeProcess;
  const devices = async () => (await getJson<{ devices: DeviceJson[] }>(`${serve.url}/api/devices`)).devices.filter((d) => d.id !== '');
  const windowsOf = (list: DeviceJson[], id: string) => list.find((d) => d.id === id)?.counters.windows ?? 0;

  beforeAll(async () => {
    pty = await startPtySim(board);
    board.start();
    serve = await startServe({
      args: ['--device', pty.path, '--device', 'sim:mains-230-50', '--device', 'sim:dc', '--db', db, '--speed', '1'],
    });
  });
  afterAll(async () => {
    board.stop();
    await pty.close();
    if (serve?.child.exitCode === null) await serve.kill9();
    scratch.remove();
  });

  let sims: string[] = [];

  it('ingests every --device into the one database', async () => {
    const list = await until(async () => {
      const l = await devices();
      return l.length === 3 && l.every((d) => d.counters.windows >= 10) ? l : undefined;
    });
    const ids = list.map((d) => d.id);
    expect(new Set(ids).size).toBe(3);
    expect(ids).toContain(hex(board.deviceId));
    expect(list.find((d) => d.id === hex(board.deviceId))?.kind).toBe('hardware');
    sims = list.filter((d) => d.kind === 'simulated').map((d) => d.id);
    expect(sims).toHaveLength(2);

    // The dashboard's "all devices" total: every device, and their sum to the nWh (one reading of the ledger).
    const all = await getJson<{ devices: { device: string; total_nwh: string }[]; total_nwh: string; today_nwh: string }>(
      `${serve.url}/api/energy?tz=UTC`,
    );
    expect(all.devices.map((d) => d.device).sort()).toEqual([...ids].sort());
    expect(BigInt(all.total_nwh)).toBe(all.devices.reduce((sum, d) => sum + BigInt(d.total_nwh), 0n));
    expect(BigInt(all.total_nwh)).toBeGreaterThan(0n);
  });

  it('keeps each device its own calibration: a change to one leaves the others as they were', async () => {
    type Cal = { calibration: Record<string, number>; config_seq: number | null };
    const cal = (id: string) => getJson<Cal>(`${serve.url}/api/devices/${id}/calibration`);
    const [one, other] = sims as [string, string];
    const before = await Promise.all([cal(one), cal(other), cal(hex(board.deviceId))]);
    const wanted = { ...before[0].calibration, v_gain: 16_500 };
    const res = await fetch(`${serve.url}/api/devices/${one}/calibration`, {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(wanted),
    });
    expect(res.status).toBe(200);
    expect((await cal(one)).calibration).toEqual(wanted);
    expect((await cal(other)).calibration).toEqual(before[1].calibration);
    expect((await cal(hex(board.deviceId))).calibration).toEqual(before[2].calibration);
  });

  it("refuses a second serve on a port the first one holds, naming the port's lock", async () => {
    const other = await runCli(['serve', '--device', pty.path, '--db', join(scratch.dir, 'other.sqlite'), '--listen', '127.0.0.1:0']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(new RegExp(`device ${pty.path} is in use by another crabwatt process \\(pid ${serve.pid}`));
  });

  it('keeps storing the other devices when one link dies', async () => {
    await pty.close(); // socat gone: the port vanishes as an unplugged board's does
    const down = await until(async () => {
      const l = await devices();
      return l.find((d) => d.id === hex(board.deviceId))?.state !== 'connected' ? l : undefined;
    });
    await until(async () => {
      const l = await devices();
      return sims.every((id) => windowsOf(l, id) >= windowsOf(down, id) + 20) || undefined;
    });
    expect(await serve.stop()).toBe(0);
  });

  it("books each device's energy in its own ledger", () => {
    const d = new Database(db, { readonly: true });
    try {
      const sum = (sql: string, device: number) => BigInt((d.prepare(sql).pluck().safeIntegers(true).get(device) as bigint | null) ?? 0n);
      const rows = d.prepare('SELECT id, device_id, total_nwh FROM devices').safeIntegers(true).all() as { id: bigint; device_id: string; total_nwh: bigint }[];
      expect(rows.map((r) => r.device_id).sort()).toEqual([hex(board.deviceId), ...sims].sort());
      for (const r of rows) {
        const id = Number(r.id);
        const booked = sum('SELECT sum(energy_nwh) FROM windows WHERE device = ?', id) + sum('SELECT sum(energy_nwh) FROM energy_gaps WHERE device = ?', id);
        expect(r.total_nwh).toBeGreaterThan(0n);
        expect(r.total_nwh).toBe(booked);
        expect(sum('SELECT count(*) FROM epochs WHERE device = ?', id)).toBeGreaterThanOrEqual(1n);
      }
    } finally {
      d.close();
    }
  });
});
