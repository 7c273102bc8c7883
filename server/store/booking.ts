// Booking into the in-memory ledger (see store.ts "Energy"): a window books nwh(R + sum_vi) − nwh(R), and an
// accumulator snapshot books what the windows did not carry as a gap. Both feed the rollups and queue their
// rows for the writer's next transaction (write-queue.ts).

import { checkInt64, checkSnapshot, nwhAt, remember, timeOf, totalAfter } from './ledger.ts';
import { LEVEL_MS, type Rollups } from './rollups.ts';
import { QUANTITIES } from './schema.ts';
import type { BookedGap, BookedWindow, Derived, DeviceState, EnergyInput, StoreCounters, WindowInput } from './types.ts';
import type { WriteQueue } from './write-queue.ts';

// bookWindow copies the derived values in this order, unrolled for speed: keep it in step with QUANTITIES.
if (QUANTITIES.join() !== 'vrms,irms,p,s,pf,n,freq_hz,v_dc,i_dc') throw new Error('booking.ts: QUANTITIES changed, update bookWindow');

function setQuantity(values: Float64Array, nulls: Uint8Array, k: number, v: number | null | undefined): void {
  const isNull = v === null || v === undefined;
  nulls[k] = isNull ? 1 : 0;
  values[k] = isNull ? 0 : v;
}

export class Booking {
  /** One window's quantities (QUANTITIES order) and which of them are null. */
  private readonly values = new Float64Array(QUANTITIES.length);
  private readonly nulls = new Uint8Array(QUANTITIES.length);
  /** Per-window rollup inputs, computed once for all levels (see RollupBucket.addPrepared). */
  private readonly defined = new Uint8Array(QUANTITIES.length);
  private readonly finiteValues = new Float64Array(QUANTITIES.length);
  private readonly weighted = new Float64Array(QUANTITIES.length);

  constructor(
    /** Rollups and packs; undefined when read-only (nothing is booked then). */
    private readonly rollups: Rollups | undefined,
    private readonly writes: WriteQueue,
    private readonly counters: StoreCounters,
    private readonly reanchorMs: number,
  ) {}

  /** Book a window that continues the device's current epoch (the caller has checked for duplicates and resets). */
  bookWindow(state: DeviceState, win: WindowInput, derived: Derived, nowMs: number): BookedWindow {
    const e = state.epoch;
    const t = timeOf(state, win.end_index, nowMs, this.reanchorMs, this.counters);
    const rawAfter = e.rawBooked + win.sum_vi;
    // Invariant: nwhBooked == nwhAt(rawBooked), so one conversion per window suffices.
    const nwh = checkInt64('energy_nwh', nwhAt(state, rawAfter) - e.nwhBooked);
    totalAfter(e, nwh);
    e.rawBooked = rawAfter;
    e.nwhBooked += nwh;
    e.lastEndIndex = win.end_index;
    e.firstEndIndex ??= win.end_index;
    e.lastTms = t;
    remember(e, win.end_index, rawAfter);
    e.dirty = true;
    this.writes.dirtyDeviceTotals.add(state);

    // Typed scratch rather than an array of number | null, whose every double would be boxed on the heap.
    const values = this.values;
    const nulls = this.nulls;
    setQuantity(values, nulls, 0, derived.vrms);
    setQuantity(values, nulls, 1, derived.irms);
    setQuantity(values, nulls, 2, derived.p);
    setQuantity(values, nulls, 3, derived.s);
    setQuantity(values, nulls, 4, derived.pf);
    setQuantity(values, nulls, 5, derived.n);
    setQuantity(values, nulls, 6, derived.freq_hz);
    setQuantity(values, nulls, 7, derived.v_dc);
    setQuantity(values, nulls, 8, derived.i_dc);
    this.writes.windowQueue.push(state.id, e.id, win, t, values, nulls, nwh);
    const samples = win.samples;
    for (let k = 0; k < values.length; k++) {
      const v = values[k]!;
      const ok = nulls[k] === 0 && Number.isFinite(v);
      this.defined[k] = ok ? 1 : 0;
      this.finiteValues[k] = ok ? v : 0;
      this.weighted[k] = ok ? v * samples : 0;
    }
    const nwhNumber = Number(nwh);
    for (let level = 0; level < LEVEL_MS.length; level++) {
      this.rollups!.bucketFor(state, level, t - 1).addPrepared(samples, nwh, nwhNumber, win.flags, this.defined, this.finiteValues, this.weighted);
    }
    this.counters.windows++;
    return {
      device: state.hex, epoch: e.id, end_index: win.end_index, t_end_ms: t, energy_nwh: nwh,
      total_nwh: e.totalAtStart + e.nwhBooked,
    };
  }

  /**
   * Reconcile a snapshot of the current epoch's boot (the caller has opened a new epoch for a new boot_id).
   * Returns the gap booked when the windows did not carry all the energy the accumulator shows, else undefined.
   */
  bookSnapshot(state: DeviceState, snap: EnergyInput, nowMs: number): BookedGap | undefined {
    const e = state.epoch;
    const x = snap.end_index;
    if (e.lastEnergyIndex !== null && x <= e.lastEnergyIndex) {
      // An old snapshot of the same boot: a repeat or a replay, never news. (A reset carries a new boot_id in
      // this very frame, and a missed one shows first in the windows, whose index then goes back.)
      if (!(x === e.lastEnergyIndex && snap.energy === e.lastEnergy)) this.counters.unreconciledSnapshots++;
      return undefined;
    }
    checkSnapshot(e, snap);
    // Where does R stand at x?
    let rawAtX: bigint;
    let beyond = false;
    if (e.lastEndIndex === null || x >= e.lastEndIndex) {
      rawAtX = e.rawBooked;
      beyond = e.lastEndIndex === null || x > e.lastEndIndex;
    } else {
      const hit = e.recent.find((r) => r.endIndex === x);
      if (!hit) {
        this.counters.unreconciledSnapshots++;
        return undefined;
      }
      rawAtX = hit.raw;
    }
    e.lastEnergy = snap.energy;
    e.lastEnergyIndex = x;
    e.dirty = true;
    if (e.energyBase === null) {
      // First snapshot of the epoch: energy before what we have seen is not ours to count.
      e.energyBase = snap.energy - rawAtX;
      if (beyond) this.advanceTo(state, x, nowMs);
      return undefined;
    }
    const missing = snap.energy - e.energyBase - rawAtX;
    let gap: BookedGap | undefined;
    if (missing !== 0n) {
      const t = beyond ? timeOf(state, x, nowMs, this.reanchorMs, this.counters) : (e.lastTms ?? nowMs);
      const nwh = checkInt64('energy_nwh', nwhAt(state, e.rawBooked + missing) - e.nwhBooked);
      totalAfter(e, nwh);
      e.rawBooked += missing;
      e.nwhBooked += nwh;
      for (const r of e.recent) if (r.endIndex >= x) r.raw += missing;
      const reason = beyond || e.discontinuity ? 'windows_lost' : 'mismatch';
      this.writes.gapQueue.push([state.id, e.id, x, t, missing.toString(), nwh, reason]);
      for (let level = 0; level < LEVEL_MS.length; level++) this.rollups!.bucketFor(state, level, t - 1).addEnergy(nwh);
      this.writes.dirtyDeviceTotals.add(state);
      this.counters.gaps++;
      gap = { device: state.hex, epoch: e.id, at_index: x, t_ms: t, raw: missing, energy_nwh: nwh, total_nwh: e.totalAtStart + e.nwhBooked };
      this.writes.armTimer();
    }
    if (beyond) this.advanceTo(state, x, nowMs);
    if (x >= (e.lastEndIndex ?? x)) e.discontinuity = false;
    return gap;
  }

  /** Windows before x will not come any more (the snapshot is past them): later windows start at x or after. */
  private advanceTo(state: DeviceState, x: bigint, nowMs: number): void {
    const e = state.epoch;
    e.lastTms = timeOf(state, x, nowMs, this.reanchorMs, this.counters);
    e.lastEndIndex = x;
    e.firstEndIndex ??= x;
    remember(e, x, e.rawBooked);
    e.dirty = true;
  }
}
