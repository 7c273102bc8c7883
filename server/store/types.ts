// The store's public shapes (inputs, results, options, errors) and the per-device state its parts share.

import type { RollupBucket } from './rollups.ts';
import type { Quantity } from './schema.ts';
import type { DeriveScale } from '../dsp/derive.ts';
import type { WriteHealth } from './write-health.ts';

export class StoreError extends Error {
  override readonly name = 'StoreError';
}

export interface StoreOptions {
  /** Take the single-writer lock (default true). Readers (export) pass false. */
  lock?: boolean;
  readonly?: boolean;
  /** Longest time a window waits in memory before its transaction (default 500 ms). */
  flushIntervalMs?: number;
  /** Queue length that triggers an immediate flush (default 4096 windows). */
  flushRows?: number;
  /**
   * Re-anchor device time to the host clock when, over a whole drift check (DRIFT_CHECK_MS of device time), the
   * host clock was never closer to it than this (default 2000 ms). See timeOf in ledger.ts.
   */
  reanchorMs?: number;
  /** Retention of raw windows in ms (default 14 days); null keeps them forever. */
  windowRetentionMs?: number | null;
  /** Retention per rollup level name in ms; absent or null keeps that level forever. */
  rollupRetentionMs?: Partial<Record<string, number | null>>;
  /** Something the store worked around and the user should know (a stored scale it cannot use). */
  onWarning?: (message: string) => void;
  /**
   * The write state changed (write-health.ts): a flush failed (disk full, I/O error; its batch stays queued and is
   * retried) or succeeded again. Called once per change, not per retry.
   */
  onWriteHealth?: (health: WriteHealth) => void;
}

/** The device's calibration registers (docs/dsp.md), as cmd_calibrate carries them. */
export interface CalibrationRegisters {
  v_offset: number;
  i_offset: number;
  v_gain: number;
  i_gain: number;
  phase: number;
}

/** Registers stored as JSON, or null for none (or for what is not a register set). */
export function parseRegisters(json: string | null): CalibrationRegisters | null {
  const v = json === null ? null : (JSON.parse(json) as Partial<CalibrationRegisters> | null);
  if (!v) return null;
  const keys = ['v_offset', 'i_offset', 'v_gain', 'i_gain', 'phase'] as const;
  return keys.every((k) => Number.isInteger(v[k])) ? (v as CalibrationRegisters) : null;
}

export interface DeviceIdentity {
  /** The identify frame's device_id. */
  deviceId: bigint;
  bootId: number;
  fsNum: number;
  fsDen: number;
  board?: number;
  adcPart?: number;
  /** The identify frame, JSON-able (bigints already converted). */
  identify?: unknown;
  /** The registers the device reports; stored as the device's calibration only while none is stored. */
  calibration?: CalibrationRegisters;
  /** Scale used when the device is new (volts and amperes per ADC LSB). */
  defaultKv: number;
  defaultKi: number;
  name?: string;
}

export interface WindowInput {
  end_index: bigint;
  samples: number;
  sum_v: bigint;
  sum_i: bigint;
  sum_vv: bigint;
  sum_ii: bigint;
  sum_vi: bigint;
  min_v: number;
  max_v: number;
  min_i: number;
  max_i: number;
  zc_count: number;
  flags: number;
  config_seq: number;
}

export type Derived = Record<Quantity, number | null>;

export interface EnergyInput {
  end_index: bigint;
  energy: bigint;
  boot_id: number;
}

export interface BookedWindow {
  device: string;
  epoch: number;
  end_index: bigint;
  t_end_ms: number;
  energy_nwh: bigint;
  total_nwh: bigint;
}

export interface BookedGap {
  device: string;
  epoch: number;
  at_index: bigint;
  t_ms: number;
  raw: bigint;
  energy_nwh: bigint;
  total_nwh: bigint;
}

export interface StoreCounters {
  windows: number;
  duplicates: number;
  gaps: number;
  epochs: number;
  flushes: number;
  unreconciledSnapshots: number;
  /** Re-anchors of device time to the host clock (sustained drift, see timeOf in ledger.ts). */
  clockSteps: number;
}

/** An opaque handle for a device attached to the store. */
export interface DeviceRef {
  readonly hex: string;
  readonly kv: number;
  readonly ki: number;
  /** The calibration registers stored for the device (the host pushes them); null before any is known. */
  readonly calibration: CalibrationRegisters | null;
  readonly fsNum: number;
  readonly fsDen: number;
}

export interface EpochState {
  id: number;
  bootId: number;
  anchorIndex: bigint | null;
  anchorMs: number | null;
  firstEndIndex: bigint | null;
  lastEndIndex: bigint | null;
  lastTms: number | null;
  rawBooked: bigint;
  energyBase: bigint | null;
  lastEnergy: bigint | null;
  lastEnergyIndex: bigint | null;
  scaleKv: number;
  scaleKi: number;
  segRaw: bigint;
  segNwh: bigint;
  nwhBooked: bigint;
  totalAtStart: bigint;
  /** Recent (end_index, R after it), to reconcile a snapshot taken a few windows back. Not persisted. */
  recent: { endIndex: bigint; raw: bigint }[];
  /** A window started after the last one ended since the last reconciled snapshot (lost windows). */
  discontinuity: boolean;
  /** The current drift check began at this sample index (null: at the next one). Not persisted. */
  driftFromIndex: bigint | null;
  /** The smallest lag of the host clock behind device time seen in the current drift check. Not persisted. */
  driftMinLagMs: number;
  /** The sample index of this process's last clock step in the epoch (null: none). Not persisted. */
  stepIndex: bigint | null;
  dirty: boolean;
}


export interface DeviceState {
  id: number;
  hex: string;
  kv: number;
  ki: number;
  calibration: CalibrationRegisters | null;
  fsNum: number;
  fsDen: number;
  /** ms per sample as a float, only for the wall-time mapping (energy never uses it). */
  msPerSample: number;
  scale: DeriveScale;
  /** The rollup bucket each level is filling now: windows arrive in time order, so almost every window lands there. */
  open: RollupBucket[];
  epoch: EpochState;
  /** Hours before this were looked at for packing (see packClosedHours). */
  packCheckedBefore: number;
  /** The last look found as many unpacked hours as one batch packs: there may be more. */
  packBackfill: boolean;
  /** Hours before this have packs (or no data): the next look starts here, not at the oldest hour. */
  packScanFrom: number;
}

