// The energy ledger of a device's epoch: the checks on what it books, the running sums it keeps, its scale
// segments and the mapping of device time (sample index) to wall time. Pure functions over DeviceState/EpochState;
// Store decides when they run and writes the result.

import type Database from 'better-sqlite3';
import { energyNanoWattHours, type DeriveScale } from '../dsp/derive.ts';
import {
  checkFrontEndScale,
  checkSampleRate,
  INT64_MAX,
  INT64_MIN,
  MAX_ABS_PRODUCT_Q2,
  MAX_ABS_SAMPLE_Q,
  MAX_WINDOW_SAMPLES,
  ScaleRangeError,
} from '../dsp/limits.ts';
import { StoreError, type DeviceState, type EnergyInput, type EpochState, type StoreCounters, type WindowInput } from './types.ts';

const RECENT_WINDOWS = 256;

/** The scale for the energy conversion; throws StoreError outside what the arithmetic holds (dsp/limits.ts). */
export function checkScale(kv: number, ki: number, fsNum: number, fsDen: number): DeriveScale {
  try {
    checkSampleRate(fsNum, fsDen);
    checkFrontEndScale(kv, ki);
  } catch (err) {
    if (err instanceof ScaleRangeError) throw new StoreError(err.message);
    throw err;
  }
  return { kv, ki, fs: fsNum / fsDen };
}

/**
 * Refuses a window no conforming device can send (docs/dsp.md "Limits of the host arithmetic"): the energy of
 * the rest is bounded, so it fits the counter.
 */
export function checkWindow(win: WindowInput): void {
  const n = win.samples;
  if (!Number.isInteger(n) || n <= 0 || n > MAX_WINDOW_SAMPLES) {
    throw new StoreError(`window ending at ${win.end_index} has ${n} samples; a device sends 1 … ${MAX_WINDOW_SAMPLES}`);
  }
  checkInt64('end_index', win.end_index);
  if (win.end_index < BigInt(n)) throw new StoreError(`window ending at ${win.end_index} cannot hold ${n} samples`);
  const sums = BigInt(n) * BigInt(MAX_ABS_SAMPLE_Q);
  const products = BigInt(n) * MAX_ABS_PRODUCT_Q2;
  checkSum('sum_v', win.sum_v, -sums, sums, n);
  checkSum('sum_i', win.sum_i, -sums, sums, n);
  checkSum('sum_vv', win.sum_vv, 0n, products, n);
  checkSum('sum_ii', win.sum_ii, 0n, products, n);
  checkSum('sum_vi', win.sum_vi, -products, products, n);
}

function checkSum(name: string, value: bigint, min: bigint, max: bigint, samples: number): void {
  if (typeof value !== 'bigint' || value < min || value > max) {
    throw new StoreError(`${name} = ${String(value)} is outside [${min}, ${max}] for ${samples} samples: not from a conforming device`);
  }
}

/**
 * Refuses an accumulator snapshot that moved further since the epoch's last one than |v·i| ≤ 2^34 per sample
 * allows. (The first one only sets the base, which is never booked.)
 */
export function checkSnapshot(e: EpochState, snap: EnergyInput): void {
  if (e.lastEnergyIndex === null || e.lastEnergy === null) return;
  const fromIndex = e.lastEnergyIndex;
  const change = snap.energy - e.lastEnergy;
  const most = (snap.end_index - fromIndex) * MAX_ABS_PRODUCT_Q2;
  if (change > most || change < -most) {
    throw new StoreError(
      `energy snapshot at ${snap.end_index} moved by ${change} since index ${fromIndex}, more than ${most}: not from a conforming device`,
    );
  }
}

/** The device total after booking `nwh` more; refused (never wrapped) if it leaves int64. */
export function totalAfter(e: EpochState, nwh: bigint): bigint {
  return checkInt64('total_nwh', e.totalAtStart + e.nwhBooked + nwh);
}

/** Keep the last RECENT_WINDOWS (end_index, R) pairs; trimmed in bulk so that each push costs O(1). */
export function remember(e: EpochState, endIndex: bigint, raw: bigint): void {
  e.recent.push({ endIndex, raw });
  if (e.recent.length > 2 * RECENT_WINDOWS) e.recent.splice(0, e.recent.length - RECENT_WINDOWS);
}

export function deviceHex(deviceId: bigint): string {
  return deviceId.toString(16).padStart(16, '0');
}

export function checkInt64(name: string, value: bigint): bigint {
  if (typeof value !== 'bigint') throw new StoreError(`${name} must be a bigint, got ${typeof value}`);
  if (value > INT64_MAX || value < INT64_MIN) throw new StoreError(`${name} = ${value} does not fit in 64 bits`);
  return value;
}

export function placeholderEpoch(): EpochState {
  return {
    id: -1, bootId: -1, anchorIndex: null, anchorMs: null, firstEndIndex: null, lastEndIndex: null, lastTms: null,
    rawBooked: 0n, energyBase: null, lastEnergy: null, lastEnergyIndex: null, scaleKv: 0, scaleKi: 0,
    segRaw: 0n, segNwh: 0n, nwhBooked: 0n, totalAtStart: 0n, recent: [], discontinuity: false, dirty: false,
    driftFromIndex: null, driftMinLagMs: Infinity, stepIndex: null,
  };
}

export function loadLatestEpoch(db: Database.Database, deviceId: number): EpochState | undefined {
  const row = db
    .prepare('SELECT * FROM epochs WHERE device = ? ORDER BY id DESC LIMIT 1')
    .safeIntegers(true)
    .get(deviceId) as Record<string, bigint | string | number | null> | undefined;
  if (!row) return undefined;
  const big = (v: unknown): bigint | null => (v === null || v === undefined ? null : BigInt(v as bigint | string));
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  return {
    id: Number(row['id']),
    bootId: Number(row['boot_id']),
    anchorIndex: big(row['anchor_index']),
    anchorMs: num(row['anchor_ms']),
    firstEndIndex: big(row['first_end_index']),
    lastEndIndex: big(row['last_end_index']),
    lastTms: num(row['last_t_ms']),
    rawBooked: BigInt(row['raw_booked'] as string),
    energyBase: big(row['energy_base']),
    lastEnergy: big(row['last_energy']),
    lastEnergyIndex: big(row['last_energy_index']),
    scaleKv: Number(row['scale_kv']),
    scaleKi: Number(row['scale_ki']),
    segRaw: BigInt(row['seg_raw'] as string),
    segNwh: BigInt(row['seg_nwh'] as bigint),
    nwhBooked: BigInt(row['nwh_booked'] as bigint),
    totalAtStart: BigInt(row['total_nwh_at_start'] as bigint),
    recent: [],
    discontinuity: false,
    dirty: false,
    driftFromIndex: null,
    driftMinLagMs: Infinity,
    stepIndex: null,
  };
}

/** Energy booked for the epoch when its running raw sum is `raw`. */
export function nwhAt(state: DeviceState, raw: bigint): bigint {
  const e = state.epoch;
  return e.segNwh + energyNanoWattHours(raw - e.segRaw, state.scale);
}

/** A scale change takes effect from the current raw position: energy already booked stays as booked. */
export function startSegment(state: DeviceState): void {
  const e = state.epoch;
  e.segRaw = e.rawBooked;
  e.segNwh = e.nwhBooked;
  e.scaleKv = state.kv;
  e.scaleKi = state.ki;
  e.dirty = true;
}

/** Device time over which the host clock's lag is watched before it may move the anchor (see timeOf). */
export const DRIFT_CHECK_MS = 600_000;

/**
 * The wall time of sample `index`: device time, counted from the epoch's anchor (the host clock at its first
 * window) by the sample index, the clock that cannot stall. How late the host handles a frame (a busy event
 * loop, a slow client, a burst of requests) never moves a timestamp.
 *
 * Drift: the device's crystal and the host clock disagree by tens of ppm (seconds per day). Handling latency
 * only ever makes the host clock look later (lag = now − t grows), never earlier, so:
 * - host clock ahead (device slow, lag > 0): the lag's minimum over DRIFT_CHECK_MS of device time is the offset
 *   with no latency in it (a stall shorter than the check cannot move it); above reanchorMs, the anchor steps
 *   forward by it at the check's end (a hole of that size in the timeline);
 * - host clock behind (device fast, lag < 0): one frame proves it, latency could only hide it; beyond
 *   −reanchorMs the anchor steps back as far as keeps times strictly increasing (at most a window's length),
 *   once per DRIFT_CHECK_MS at most: that follows a crystal up to a window per check fast (333 ppm at 5
 *   windows/s) and stores a faster clock (a simulator at --speed 10) on its own time, not squeezed.
 * Each step is counted in clockSteps.
 */
export function timeOf(state: DeviceState, index: bigint, nowMs: number, reanchorMs: number, counters: StoreCounters): number {
  const e = state.epoch;
  if (e.anchorIndex === null || e.anchorMs === null) {
    e.anchorIndex = index;
    e.anchorMs = Math.max(nowMs, e.lastTms ?? -Infinity);
  }
  let t = Math.round(e.anchorMs + Number(index - e.anchorIndex) * state.msPerSample);
  const lag = nowMs - t;
  let step = 0;
  if (lag < -reanchorMs) {
    if (e.stepIndex === null || Number(index - e.stepIndex) * state.msPerSample >= DRIFT_CHECK_MS) step = lag;
  } else {
    if (lag < e.driftMinLagMs) e.driftMinLagMs = lag;
    e.driftFromIndex ??= index;
    if (Number(index - e.driftFromIndex) * state.msPerSample >= DRIFT_CHECK_MS) {
      if (e.driftMinLagMs > reanchorMs) step = e.driftMinLagMs;
      e.driftFromIndex = index;
      e.driftMinLagMs = Infinity;
    }
  }
  if (step !== 0) {
    // A later sample than the last booked one must get a later time; the same sample, the same time.
    const floor = e.lastTms === null ? -Infinity : e.lastTms + (e.lastEndIndex === null || index > e.lastEndIndex ? 1 : 0);
    e.anchorIndex = index;
    e.anchorMs = Math.max(t + step, floor);
    t = e.anchorMs;
    e.driftFromIndex = index;
    e.driftMinLagMs = Infinity;
    e.stepIndex = index;
    counters.clockSteps++;
  }
  return Math.max(t, e.lastTms ?? -Infinity);
}
