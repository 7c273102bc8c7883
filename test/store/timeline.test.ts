// Window timestamps come from the device's sample index; the host clock anchors an epoch and corrects only
// sustained drift (server/store/ledger.ts timeOf). The host clock here is a fake that stalls and drifts.

import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DRIFT_CHECK_MS } from '../../server/store/ledger.ts';
import { Store, type DeviceRef } from '../../server/store/store.ts';
import { derivedFor, makeWindow, tempDir } from './helpers.ts';

const FS = 1000; // 1 sample = 1 ms of device time
const WINDOW = 200;
const T0 = Date.UTC(2026, 3, 1, 12, 0, 0);

describe('Store timeline', () => {
  let cleanup: () => void;
  let store: Store;
  let dev: DeviceRef;
  let endIndex: bigint;
  beforeEach(() => {
    let dir: string;
    ({ dir, cleanup } = tempDir('crabwatt-timeline-'));
    store = Store.open(join(dir, 't.sqlite'), { reanchorMs: 2000 });
    dev = store.attachDevice({ deviceId: 0x7157n, bootId: 1, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
    endIndex = 0n;
  });
  afterEach(() => {
    store.close();
    cleanup();
  });

  /** One window of the device, handled by the host at hostMs(device time at its end). */
  function window(hostMs: (deviceMs: number) => number): number {
    endIndex += BigInt(WINDOW);
    const booked = store.addWindow(dev, makeWindow(endIndex, WINDOW, 1000n), derivedFor(1), hostMs(Number(endIndex)));
    return booked!.t_end_ms;
  }

  it('keeps device time through event-loop stalls: no holes, no repeated timestamps, no clock step', () => {
    const times: number[] = [];
    for (let k = 0; k < 50; k++) times.push(window((d) => T0 + d));
    // A 3.4 s stall: the next 17 windows are all handled at its end, at once …
    const stallEnd = T0 + Number(endIndex) + 17 * WINDOW + 200;
    for (let k = 0; k < 17; k++) times.push(window(() => stallEnd));
    // … then a second stall of 5 s, and windows on time again.
    for (let k = 0; k < 50; k++) times.push(window((d) => T0 + d));
    const stall2End = T0 + Number(endIndex) + 25 * WINDOW;
    for (let k = 0; k < 25; k++) times.push(window(() => stall2End));
    for (let k = 0; k < 50; k++) times.push(window((d) => T0 + d + 3));
    // Device time, exactly: the first window's end anchored at its host time, each later one a window later.
    expect(times).toEqual(times.map((_, k) => T0 + (k + 1) * WINDOW));
    expect(store.counters.clockSteps).toBe(0);
  });

  for (const ppm of [+250, -250]) {
    it(`follows a host clock that drifts by ${ppm} ppm with rare bounded steps, times strictly increasing`, () => {
      const reanchorMs = 1000;
      store.close();
      store = Store.open(store.path, { reanchorMs });
      dev = store.attachDevice({ deviceId: 0x7157n, bootId: 1, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
      const hours = 4;
      const host = (d: number) => T0 + Math.round(d * (1 + ppm * 1e-6));
      let last = -Infinity;
      let notIncreasing = 0;
      let worst = 0;
      for (let k = 0; k < (hours * 3_600_000) / WINDOW; k++) {
        // Every 7th window is handled 2.5 s late (a stall): it must change nothing.
        const t = window((d) => host(d) + (k % 7 === 3 ? 2500 : 0));
        if (!(t > last)) notIncreasing++;
        last = t;
        worst = Math.max(worst, Math.abs(t - host(Number(endIndex))));
      }
      expect(notIncreasing).toBe(0);
      // 4 h of 250 ppm is 3.6 s: without steps the times would leave these bounds.
      const driftMs = (hours * 3_600_000 * Math.abs(ppm)) / 1e6;
      if (ppm > 0) {
        // Forward: at most one step per check, after the drift passed the threshold for up to two checks.
        expect(worst).toBeLessThan(reanchorMs + (2 * DRIFT_CHECK_MS * ppm) / 1e6);
        expect(store.counters.clockSteps).toBeLessThanOrEqual((hours * 3_600_000) / DRIFT_CHECK_MS);
      } else {
        // Backward: once the threshold is passed, a window back per step, a step per check at most.
        expect(worst).toBeLessThanOrEqual(reanchorMs + (DRIFT_CHECK_MS * -ppm) / 1e6 + WINDOW);
        expect(store.counters.clockSteps).toBeLessThanOrEqual((hours * 3_600_000) / DRIFT_CHECK_MS);
        expect(store.counters.clockSteps).toBeGreaterThanOrEqual(Math.floor((driftMs - reanchorMs) / WINDOW));
      }
      expect(store.counters.clockSteps).toBeGreaterThan(0);
    });
  }
});
