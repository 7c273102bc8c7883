// Schema and migrations. `PRAGMA user_version` holds the number of migrations applied; each migration runs
// in its own transaction together with the user_version bump, so a crash leaves either the old or the new
// schema. Append new migrations; never edit one that has shipped.
//
// Integer conventions: 64-bit device sums and indices are SQLite INTEGER (signed 64-bit: Σv² ≤ 2^54 and sample
// indices < 2^63 fit); the 96-bit device accumulator and epoch-relative raw energy, which can exceed 2^63,
// are decimal TEXT. Energy in nanowatt-hours is INTEGER (2^63 nWh ≈ 9.2 TWh per device).

import type Database from 'better-sqlite3';

/** Quantities derived per window and rolled up (mean/min/max). Order is the column order everywhere. */
export const QUANTITIES = ['vrms', 'irms', 'p', 's', 'pf', 'n', 'freq_hz', 'v_dc', 'i_dc'] as const;
export type Quantity = (typeof QUANTITIES)[number];

/** Rollup levels: name and bucket length. Buckets are aligned to the Unix epoch (UTC). */
export const ROLLUP_LEVELS = [
  { name: '1s', ms: 1_000 },
  { name: '1m', ms: 60_000 },
  { name: '15m', ms: 900_000 },
  { name: '1h', ms: 3_600_000 },
  { name: '1d', ms: 86_400_000 },
] as const;
export type RollupLevelName = (typeof ROLLUP_LEVELS)[number]['name'];

/**
 * Rollup statistics are one BLOB per bucket: little-endian float64, for each quantity in QUANTITIES order,
 * [Σ(q·samples), Σ samples where q is defined, min, max] (min/max NaN when undefined). A weighted sum and weight
 * rather than a mean, so that a bucket can be extended by later batches and folded into coarser ones; a BLOB
 * rather than 36 REAL columns because reading a row costs per column, and exports read millions of rows.
 */
export const STATS_PER_QUANTITY = 4;
export const STATS_BYTES = QUANTITIES.length * STATS_PER_QUANTITY * 8;

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL UNIQUE,          -- 16 hex digits, the identify frame's device_id
    name TEXT,
    kv REAL NOT NULL,                        -- volts per output LSB (host-side analog front-end scale)
    ki REAL NOT NULL,                        -- amperes per output LSB
    fs_num INTEGER NOT NULL,                 -- sample rate = fs_num / fs_den Hz
    fs_den INTEGER NOT NULL,
    board INTEGER,
    adc_part INTEGER,
    identify TEXT,                           -- last identify frame, JSON (bigints as decimal strings)
    calibration TEXT,                        -- device calibration registers, JSON
    total_nwh INTEGER NOT NULL DEFAULT 0,    -- exact energy counter, never decreases by reset
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER
  );

  CREATE TABLE epochs (
    id INTEGER PRIMARY KEY,
    device INTEGER NOT NULL REFERENCES devices(id),
    boot_id INTEGER NOT NULL,
    started_ms INTEGER NOT NULL,             -- host wall time when the epoch was opened
    anchor_index INTEGER,                    -- sample index mapped to anchor_ms (device time → wall time)
    anchor_ms INTEGER,
    first_end_index INTEGER,
    last_end_index INTEGER,                  -- end of the last window booked; windows at or before it are duplicates
    last_t_ms INTEGER,                       -- wall time of last_end_index, keeps timestamps monotone
    raw_booked TEXT NOT NULL DEFAULT '0',    -- Σ sum_vi booked (windows + gaps), relative to the epoch start
    energy_base TEXT,                        -- device accumulator E at raw_booked = 0; null until an energy frame
    last_energy TEXT,                        -- last accumulator snapshot and its index
    last_energy_index INTEGER,
    scale_kv REAL NOT NULL,                  -- scale in force for the current segment (see ingest/energy.ts)
    scale_ki REAL NOT NULL,
    seg_raw TEXT NOT NULL DEFAULT '0',       -- raw_booked when the segment began
    seg_nwh INTEGER NOT NULL DEFAULT 0,      -- nwh_booked when the segment began
    nwh_booked INTEGER NOT NULL DEFAULT 0,   -- energy booked in this epoch
    total_nwh_at_start INTEGER NOT NULL,     -- device total when the epoch opened
    reason TEXT NOT NULL                     -- why it opened: first, boot_id, index_backwards
  );
  CREATE INDEX epochs_device ON epochs(device, id);

  CREATE TABLE windows (
    device INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    end_index INTEGER NOT NULL,
    t_end_ms INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    sum_v INTEGER NOT NULL, sum_i INTEGER NOT NULL,
    sum_vv INTEGER NOT NULL, sum_ii INTEGER NOT NULL, sum_vi INTEGER NOT NULL,
    min_v INTEGER NOT NULL, max_v INTEGER NOT NULL, min_i INTEGER NOT NULL, max_i INTEGER NOT NULL,
    zc_count INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    config_seq INTEGER NOT NULL,
    vrms REAL, irms REAL, p REAL, s REAL, pf REAL, n REAL, freq_hz REAL, v_dc REAL, i_dc REAL,
    energy_nwh INTEGER NOT NULL,
    PRIMARY KEY (device, epoch, end_index)
  ) WITHOUT ROWID;
  CREATE INDEX windows_time ON windows(device, t_end_ms);

  -- Energy the windows did not carry (lost windows, host downtime), found from accumulator snapshots.
  CREATE TABLE energy_gaps (
    id INTEGER PRIMARY KEY,
    device INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    at_index INTEGER NOT NULL,
    t_ms INTEGER NOT NULL,
    raw TEXT NOT NULL,
    energy_nwh INTEGER NOT NULL,
    reason TEXT NOT NULL
  );
  CREATE INDEX energy_gaps_time ON energy_gaps(device, t_ms);

  CREATE TABLE rollups (
    device INTEGER NOT NULL,
    level INTEGER NOT NULL,                  -- bucket length in ms (one of ROLLUP_LEVELS)
    t_start_ms INTEGER NOT NULL,
    samples INTEGER NOT NULL DEFAULT 0,
    windows INTEGER NOT NULL DEFAULT 0,
    energy_nwh INTEGER NOT NULL DEFAULT 0,   -- windows' and gaps' energy in the bucket
    flags INTEGER NOT NULL DEFAULT 0,        -- OR of the windows' flags
    stats BLOB NOT NULL,                     -- see STATS_BYTES
    PRIMARY KEY (device, level, t_start_ms)
  ) WITHOUT ROWID;

  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  // 2: packed copies of the 1 s rollups, one row per device and closed UTC hour (see pack.ts). Databases from
  // before it keep working: the writer packs their closed hours a few per batch, and readers use the rows
  // wherever a pack is missing.
  `
  CREATE TABLE rollup_packs (
    id INTEGER PRIMARY KEY,
    device INTEGER NOT NULL,
    t_start_ms INTEGER NOT NULL,             -- the UTC hour (PACK_MS aligned)
    rows INTEGER NOT NULL,                   -- 1 s rows in data; 0 = not packable, read the rollups rows
    data BLOB NOT NULL                       -- rows × PACK_STRIDE little-endian float64 (pack.ts)
  );
  CREATE UNIQUE INDEX rollup_packs_time ON rollup_packs(device, t_start_ms);
  `,
  // 3: a packed hour is stored once: its 1 s rows go (pack.ts), here for the hours packed before this version,
  // which kept both. Unpackable hours (rows = 0) keep their rows. The file does not shrink by itself: SQLite
  // reuses the freed pages for new data (VACUUM returns them to the file system).
  `
  DELETE FROM rollups
  WHERE level = 1000 AND EXISTS (
    SELECT 1 FROM rollup_packs p
    WHERE p.device = rollups.device AND p.rows > 0 AND p.t_start_ms = rollups.t_start_ms - rollups.t_start_ms % 3600000
  );
  `,
  // 4: the event log (events.ts): what the other tables do not already record (epochs are the device resets,
  // energy_gaps the energy windows did not carry): serve's starts and stops, link changes, calibration changes,
  // periods the database did not take writes. Written in the batch transactions, as the measurements are.
  // IF NOT EXISTS: a database whose user_version was set back (the migration tests do) keeps its table.
  `
  CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    device INTEGER,                          -- null: the host itself
    t_ms INTEGER NOT NULL,
    until_ms INTEGER,                        -- end of a period (disk full); null for an instant
    kind TEXT NOT NULL,                      -- serve_start, serve_stop, link_<state>, calibration, disk_full, write_failing
    detail TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS events_time ON events(t_ms);
  `,
  // 5: kept waveform captures (captures.ts): the samples as the device sent them (calibrated ADC LSB, int32 LE)
  // with the scale in force when they were taken. Self-contained: the device by its id text, as the API names it.
  `
  CREATE TABLE IF NOT EXISTS captures (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,                    -- 16 hex digits, lower case
    name TEXT NOT NULL,
    captured_ms INTEGER NOT NULL,            -- when it was armed
    kept_ms INTEGER NOT NULL,
    pairs INTEGER NOT NULL,
    sample_rate_hz REAL NOT NULL,
    decimation INTEGER NOT NULL,             -- pair k is sample first_index + k·decimation
    kv REAL NOT NULL,                        -- volts and amperes per LSB when it was taken
    ki REAL NOT NULL,
    first_index INTEGER NOT NULL,
    trigger_index INTEGER NOT NULL,
    trigger_offset INTEGER NOT NULL,         -- position of the trigger pair in v / i
    v BLOB NOT NULL,                         -- pairs × int32 LE
    i BLOB NOT NULL
  );
  CREATE INDEX IF NOT EXISTS captures_device_time ON captures(device, captured_ms);
  `,
  // 6: power quality (server/pq/, docs/power-quality.md): the 10-minute aggregates of the IEC 61000-4-7
  // analysis and the IEC 61000-4-30 voltage events, written in the batch transactions (pq-rows.ts). A
  // re-analysed interval or event (a serve restarted on a device that kept running) is kept once: the unique
  // keys are device, epoch and the device sample index the interval or event starts at.
  `
  CREATE TABLE IF NOT EXISTS pq_aggregates (
    id INTEGER PRIMARY KEY,
    device INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    interval_index INTEGER NOT NULL,         -- device sample index of the 10-minute boundary the interval starts at
    start_index INTEGER NOT NULL,            -- [start, end) of the windows it holds, device sample index
    end_index INTEGER NOT NULL,
    t_start_ms INTEGER NOT NULL,
    t_end_ms INTEGER NOT NULL,
    windows INTEGER NOT NULL,                -- 10/12-cycle windows aggregated
    flagged INTEGER NOT NULL,                -- 1: a dip, swell or interruption touched it (IEC 61000-4-30 flag)
    vrms REAL NOT NULL,                      -- V
    irms REAL NOT NULL,                      -- A
    thd_v REAL,                              -- THDS orders 2 … 40, ratio; null without a fundamental
    thd_i REAL,
    harmonics BLOB NOT NULL                  -- 150 little-endian float64: h_v (V), h_i (A), p_h (W), orders 1 … 50
  );
  CREATE UNIQUE INDEX IF NOT EXISTS pq_aggregates_interval ON pq_aggregates(device, epoch, interval_index);
  CREATE INDEX IF NOT EXISTS pq_aggregates_time ON pq_aggregates(device, t_start_ms);

  CREATE TABLE IF NOT EXISTS pq_events (
    id INTEGER PRIMARY KEY,
    device INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    kind TEXT NOT NULL,                      -- dip, swell, interruption
    start_index REAL NOT NULL,               -- device sample index (fractional: located on the waveform)
    end_index REAL NOT NULL,
    t_start_ms INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    extreme_v REAL NOT NULL,                 -- residual (dip, interruption) or maximum (swell) Urms(1/2), V
    cut INTEGER NOT NULL,                    -- 1: the stream ended (gap, reset) before the event did
    trace BLOB NOT NULL                      -- little-endian float64 pairs: s from the start, Urms(1/2) V
  );
  CREATE UNIQUE INDEX IF NOT EXISTS pq_events_start ON pq_events(device, epoch, kind, start_index);
  CREATE INDEX IF NOT EXISTS pq_events_time ON pq_events(device, t_start_ms);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class SchemaTooNewError extends Error {
  override readonly name = 'SchemaTooNewError';
}

/** Bring the database to SCHEMA_VERSION. */
export function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number | bigint;
  const version = Number(current);
  if (version > SCHEMA_VERSION) {
    throw new SchemaTooNewError(
      `the database has schema version ${version}, newer than this crabwatt (${SCHEMA_VERSION}): upgrade crabwatt`,
    );
  }
  for (let v = version; v < SCHEMA_VERSION; v++) {
    const sql = MIGRATIONS[v]!;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
