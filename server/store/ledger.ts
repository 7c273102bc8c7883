// The energy ledger of a device's epoch: the checks on what it books, the running sums it keeps, its scale
// segments and the mapping of device time (sample index) to wall time. Pure functions over DeviceState/EpochState;
// Store decides when they run and writes the result.

import type Database from 'better-sqlite3';
import { energyNanoWattHours, validateScale, type DeriveScale } from '../dsp/derive.ts';
import { StoreError, type DeviceState, type EpochState } from './types.ts';

const RECENT_WINDOWS = 256;
const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/** The scale for the energy conversion; throws StoreError for a non-positive or non-finite one. */
export function checkScale(kv: number, ki: number, fsNum: number, fsDen: number): DeriveScale {
  if (!Number.isSafeInteger(fsNum) || !Number.isSafeInteger(fsDen) || fsNum <= 0 || fsDen <= 0) {
    throw new StoreError(`sample rate must be a positive rational, got ${fsNum}/${fsDen}`);
  }
  const scale = { kv, ki, fs: fsNum / fsDen };
  try {
    validateScale(scale);
  } catch (err) {
    throw new StoreError((err as Error).message);
  }
  return scale;
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

/** The wall time of sample `index`; re-anchors when device and host time drift more than reanchorMs apart. */
export function timeOf(state: DeviceState, index: bigint, nowMs: number, reanchorMs: number): number {
  const e = state.epoch;
  if (e.anchorIndex === null || e.anchorMs === null) {
    e.anchorIndex = index;
    e.anchorMs = Math.max(nowMs, e.lastTms ?? -Infinity);
  }
  let t = Math.round(e.anchorMs + Number(index - e.anchorIndex) * state.msPerSample);
  if (Math.abs(t - nowMs) > reanchorMs) {
    // The device clock and the host clock drift apart (crystal tolerance, host downtime): follow the host.
    e.anchorIndex = index;
    e.anchorMs = Math.max(nowMs, e.lastTms ?? -Infinity);
    t = e.anchorMs;
  }
  return Math.max(t, e.lastTms ?? -Infinity);
}
