// JSON schemas (TypeBox) for every query, body and response of the API. Fastify validates requests
// against them before a handler runs (so malformed input is a 400 with ajv's message), serialises
// responses through them, and @fastify/swagger publishes them at /docs.

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { SCALE_MAX, SCALE_MIN, SCALE_PRODUCT_RULE } from '../dsp/limits.ts';
import { DATA_HEALTH, EXPORT_INTERVALS, HISTORY_FIELDS, MAX_CAPTURE_SPAN_MS } from './deps.ts';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/**
 * What a handler sees of a query or body whose properties K have defaults: optional on the wire (so the
 * OpenAPI document does not call them required), always present after ajv (useDefaults) has filled them in.
 */
type WithDefaults<T, K extends keyof T> = Omit<T, K> & { [P in K]-?: Exclude<T[P], undefined> };

/** Device ids are hex serials or short names; the pattern keeps them out of paths and SQL alike. */
export const DeviceId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });

/**
 * A time given either as Unix milliseconds or as ISO-8601 with an offset; parsed by parseTime(), which
 * reports what it could not read. The length bound stops absurd strings before parsing.
 */
const TimeParam = Type.String({
  minLength: 1,
  maxLength: 40,
  description: 'Unix ms, or ISO-8601 (e.g. 2026-03-29T00:00:00+01:00)',
  examples: ['1774738800000', '2026-03-29T00:00:00+01:00'],
});

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String(),
});

export const DeviceParams = Type.Object({ id: DeviceId });

export const LinkCountersSchema = Type.Object({
  bytes: Type.Integer({ description: 'bytes read from the port, garbage included' }),
  rejected: Type.Integer({ description: 'chunks that were not a usable frame (COBS, CRC, protocol, oversize)' }),
  dropped: Type.Integer({ description: 'windows not stored because the database could not take them (counted, their energy booked as a gap)' }),
  frames: Type.Integer(),
  crc_errors: Type.Integer(),
  seq_gaps: Type.Integer(),
  resets: Type.Integer(),
  reconnects: Type.Integer(),
  frames_per_s: Type.Number(),
  windows: Type.Integer({ description: 'windows stored since serve started' }),
  duplicates: Type.Integer({ description: 'windows received again that were already stored (not stored twice)' }),
});

/** The device's own counters, from its last status frame (docs/protocol.md, "status"). */
export const DeviceHealthSchema = Type.Object({
  frames_dropped: Type.Integer({ description: 'frames not sent whole because the link was full' }),
  fifo_overflows: Type.Integer({ description: 'windows lost because the result FIFO was full' }),
  samples_dropped: Type.Integer({ description: 'ADC samples lost between capture and DSP' }),
  adc_errors: Type.Integer({ description: 'ADC frames with a bad leading-zero pattern' }),
  watchdog_resets: Type.Integer({ description: 'resets caused by the watchdog' }),
  link_stalls: Type.Integer({ description: 'times a link took no byte for 500 ms while frames waited (frames then went to the other link)' }),
  uart_rx_overruns: Type.Integer({ description: 'bytes the UART dropped at a full receive FIFO: commands lost on the line' }),
});

/** The power-quality analysis of the device's waveform stream (docs/power-quality.md, "Live"). */
export const PqCountersSchema = Type.Object({
  waveform_frames: Type.Integer({ description: 'waveform frames received' }),
  waveform_lost_samples: Type.Integer({ description: 'stream samples (512 device samples each) lost between waveform frames' }),
  waveform_gaps: Type.Integer({ description: 'discontinuities of the stream: a lost stretch, or a restart at a device reset' }),
  windows: Type.Integer({ description: '10/12-cycle windows analysed' }),
  gap_windows: Type.Integer({ description: 'whole-cycle windows the stream did not cover (not analysed, nothing interpolated)' }),
  events: Type.Integer({ description: 'dips, swells and interruptions detected' }),
  declared_v: Type.Number({ description: 'the declared supply voltage the events are measured against (serve --declared-v), V' }),
  nominal_hz: Type.Number({ description: 'the nominal frequency (serve --nominal-hz), Hz' }),
  error: Nullable(Type.String({ description: 'why there is no analysis (the device rate cannot carry the 50th harmonic)' })),
});

export const DeviceSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  kind: Type.Union([Type.Literal('hardware'), Type.Literal('simulated'), Type.Literal('rtl')]),
  path: Nullable(Type.String()),
  state: Type.Union(
    (['connected', 'disconnected', 'reconnecting', 'bootloader', 'absent'] as const).map((s) => Type.Literal(s)),
  ),
  detail: Type.String(),
  health: Type.Object(
    {
      state: Type.Union(DATA_HEALTH.map((h) => Type.Literal(h))),
      detail: Type.String(),
    },
    { description: 'whether the data gets through: no_valid_frames (bytes but no frame), disk_full / write_failing (the database does not take it)' },
  ),
  sample_rate_hz: Type.Number(),
  counters: LinkCountersSchema,
  warning: Nullable(Type.String({ description: 'a condition to show though the link is up, e.g. duplicates dominate' })),
  device_health: Nullable({ ...DeviceHealthSchema, description: "the device's counters since its reset; null until it sent a status frame" }),
  pq: Nullable({ ...PqCountersSchema, description: 'the power-quality analysis of the waveform stream since serve started; null when it is off' }),
});
export const DeviceList = Type.Object({ devices: Type.Array(DeviceSchema) });

export const EnergyQuery = Type.Object({
  tz: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone that defines "today"' })),
});
export const EnergyReply = Type.Object({
  device: Type.String(),
  tz: Type.String(),
  day_start: Type.String({ description: 'local midnight, ISO-8601' }),
  today_wh: Type.Number(),
  total_wh: Type.Number(),
  today_nwh: Type.String({ description: 'exact integer nWh' }),
  total_nwh: Type.String({ description: 'exact integer nWh' }),
});
const EnergyFigures = {
  today_wh: Type.Number(),
  total_wh: Type.Number(),
  today_nwh: Type.String({ description: 'exact integer nWh' }),
  total_nwh: Type.String({ description: 'exact integer nWh' }),
};
export const AllEnergyReply = Type.Object({
  tz: Type.String(),
  day_start: Type.String({ description: 'local midnight, ISO-8601' }),
  devices: Type.Array(Type.Object({ device: Type.String(), ...EnergyFigures })),
  ...EnergyFigures,
}, { description: 'each device the server knows (attached or stored) and their exact sum' });

export const HistoryQuerySchema = Type.Object({
  device: DeviceId,
  from: TimeParam,
  to: TimeParam,
  points: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 })),
  fields: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 200,
    default: 'p',
    description: `comma-separated, of: ${HISTORY_FIELDS.join(', ')}`,
  })),
});
export type HistoryQueryT = WithDefaults<Static<typeof HistoryQuerySchema>, 'points' | 'fields'>;

const NumOrNullArray = Type.Array(Nullable(Type.Number()));
export const HistoryReply = Type.Object({
  device: Type.String(),
  from: Type.Integer({ description: 'Unix ms' }),
  to: Type.Integer({ description: 'Unix ms' }),
  level: Type.String({ description: 'rollup level the buckets were folded from' }),
  bucket_ms: Type.Integer({
    description: 'bucket length; from windows (level raw) never shorter than the longest window in the range, so that ' +
      'continuous data fills every bucket (fewer than `points` buckets may come back)',
  }),
  t: Type.Array(Type.Number(), { description: 'bucket starts, Unix ms' }),
  series: Type.Record(
    Type.String(),
    Type.Object({ mean: NumOrNullArray, min: NumOrNullArray, max: NumOrNullArray }),
  ),
});

export const ExportQuerySchema = Type.Object({
  device: DeviceId,
  from: TimeParam,
  to: TimeParam,
  interval: Type.Optional(Type.Union(EXPORT_INTERVALS.map((i) => Type.Literal(i)), { default: '1m' })),
  tz: Type.Optional(Type.String({ minLength: 1, maxLength: 64, default: 'UTC', description: 'IANA zone of the intervals and of ISO times without an offset' })),
});
export type ExportQueryT = WithDefaults<Static<typeof ExportQuerySchema>, 'interval' | 'tz'>;

export const ExportEstimateReply = Type.Object({ rows: Type.Integer() });

const i16 = Type.Integer({ minimum: -32768, maximum: 32767 });
const u16 = Type.Integer({ minimum: 0, maximum: 65535 });
export const CalibrationSchema = Type.Object(
  {
    v_offset: i16,
    i_offset: i16,
    v_gain: u16,
    i_gain: u16,
    // docs/dsp.md: |phase| < 1023·65536
    phase: Type.Integer({ minimum: -(1023 * 65536 - 1), maximum: 1023 * 65536 - 1 }),
    // docs/dsp.md "Limits of the host arithmetic": each alone in [2^-996, 2^951]; their product is checked by
    // the route (422), as no JSON schema can say it.
    kv: Type.Number({ minimum: SCALE_MIN, maximum: SCALE_MAX, description: `volts per ADC LSB; ${SCALE_PRODUCT_RULE}` }),
    ki: Type.Number({ minimum: SCALE_MIN, maximum: SCALE_MAX, description: `amperes per ADC LSB; ${SCALE_PRODUCT_RULE}` }),
  },
  { additionalProperties: false },
);
export const CalibrationReply = Type.Object({
  calibration: CalibrationSchema,
  config_seq: Nullable(
    Type.Integer({
      description:
        'the device configuration (config_seq of its current boot) from which its windows are measured with this ' +
        'calibration; null while the device has not confirmed it (not attached, a push pending or failed)',
    }),
  ),
});

export const CaptureBody = Type.Object(
  {
    pairs: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: 4096 })),
    trigger: Type.Optional(Type.Union(
      (['immediate', 'v_rising', 'v_falling', 'i_rising', 'i_falling'] as const).map((t) => Type.Literal(t)),
      { default: 'v_rising' },
    )),
    level: Type.Optional(Type.Integer({ minimum: -32768, maximum: 32767, default: 0 })),
    pretrigger: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: 0 })),
    hysteresis: Type.Optional(Type.Integer({
      minimum: 0, maximum: 32767, default: 0,
      description: 'ADC LSB: a rising trigger needs the channel below level − hysteresis first (falling: above level + hysteresis)',
    })),
    decimation: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'keep every D-th sample pair; default 1' })),
    duration_ms: Type.Optional(Type.Number({
      exclusiveMinimum: 0, maximum: MAX_CAPTURE_SPAN_MS,
      description: 'span the pairs should cover; the server picks the smallest D that covers it (instead of decimation)',
    })),
    cycles: Type.Optional(Type.Number({
      exclusiveMinimum: 0, maximum: 1000,
      description: 'mains cycles the pairs should cover, at the frequency last measured (instead of decimation)',
    })),
  },
  { additionalProperties: false },
);
export type CaptureBodyT = WithDefaults<Static<typeof CaptureBody>, 'pairs' | 'trigger' | 'level' | 'pretrigger' | 'hysteresis'>;
export const CaptureCreated = Type.Object({ capture_id: Type.Integer(), href: Type.String() });
export const CaptureParams = Type.Object({ id: DeviceId, captureId: Type.Integer({ minimum: 0, maximum: 65535 }) });
export const CaptureReply = Type.Object({
  id: Type.Integer(),
  device: Type.String(),
  state: Type.Union([Type.Literal('pending'), Type.Literal('complete'), Type.Literal('failed')]),
  detail: Type.String(),
  requested_at: Type.Integer({ description: 'Unix ms' }),
  sample_rate_hz: Type.Number(),
  kv: Type.Number(),
  ki: Type.Number(),
  decimation: Type.Integer({ description: 'samples between two pairs: pair k is sample first_index + k·decimation' }),
  first_index: Type.Integer({ description: 'sample index of v[0] / i[0] (0 until complete)' }),
  trigger_index: Type.Integer({ description: 'sample index of the trigger pair (0 until complete)' }),
  trigger_offset: Type.Integer({ description: 'position of the trigger pair in v / i' }),
  v: Type.Array(Type.Integer(), { description: 'calibrated voltage, ADC LSB' }),
  i: Type.Array(Type.Integer(), { description: 'calibrated current, ADC LSB' }),
});

export const LiveQuery = Type.Object({
  token: Type.Optional(Type.String({ maxLength: 256 })),
  device: Type.Optional(DeviceId),
});

// The WebSocket stream (GET /api/live). json.ts builds these messages and live.ts sends them without
// validating (a window per mains cycle per client is too hot for it); the schemas are the contract the
// dashboard's types are derived from, and test/web/api.test.ts holds the server's messages to them.
export const LiveWindowMessage = Type.Object({
  type: Type.Literal('window'),
  device: Type.String(),
  t_ms: Type.Number({ description: 'end of the window, Unix ms' }),
  samples: Type.Integer(),
  vrms: Type.Number(),
  irms: Type.Number(),
  p: Type.Number({ description: 'active power, W' }),
  s: Type.Number({ description: 'apparent power, VA' }),
  pf: Nullable(Type.Number()),
  n: Type.Number({ description: 'non-active power, var' }),
  freq_hz: Nullable(Type.Number()),
  energy_nwh: Type.String({ description: 'exact integer nWh of this window' }),
  flags: Type.Integer({ description: 'WINDOW_FLAG bits (docs/dsp.md)' }),
  config_seq: Type.Integer({
    description: 'device configuration the window was measured with: the calibration GET /api/devices/{id}/calibration returns from its config_seq on',
  }),
  received_at_ms: Type.Number({ description: 'server clock when the frame arrived, Unix ms' }),
  v_dc: Nullable(Type.Number({ description: 'mean voltage, V (the calibration page takes offsets from it)' })),
  i_dc: Nullable(Type.Number({ description: 'mean current, A' })),
});
export const LiveLinkMessage = Type.Object({
  type: Type.Literal('link'),
  device: Type.String(),
  state: DeviceSchema.properties.state,
  detail: Type.String(),
});
export const LiveDevicesMessage = Type.Object({
  type: Type.Literal('devices'),
  t_ms: Type.Number({ description: 'Unix ms' }),
  devices: Type.Array(DeviceSchema),
});
export const LiveMessage = Type.Union([LiveWindowMessage, LiveLinkMessage, LiveDevicesMessage]);
