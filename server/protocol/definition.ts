// The wire protocol, defined once. The TypeScript codec reads these tables, and the firmware's C header
// (firmware/include/crabwatt_protocol.h) is generated from them by `crabwatt gen-header`; a test fails
// when the committed header differs from what this file generates. docs/protocol.md explains the choices.
//
// Frame on the wire:  COBS( header ‖ body ‖ crc32c(header ‖ body) ) ‖ 0x00
// header: version u8, type u8, seq u32 (little-endian); all multi-byte fields are little-endian.

export const PROTOCOL_VERSION = 4;
export const HEADER_BYTES = 6;
export const CRC_BYTES = 4;
/** Largest decoded frame (header + body + CRC); anything longer between two delimiters is garbage. */
export const MAX_FRAME_BYTES = 1100;

/** USB ids. Ours are from the pid.codes open-source range; the bootloader is foboot's. */
export const USB_VID = 0x1209;
export const USB_PID_CRABWATT = 0x5af1;
export const USB_PID_BOOTLOADER = 0x5af0;

export type ScalarType = 'u8' | 'u16' | 'u32' | 'u64' | 'i16' | 'i32' | 'i64' | 'i128';

export const SCALAR_BYTES: Record<ScalarType, number> = {
  u8: 1, u16: 2, u32: 4, u64: 8, i16: 2, i32: 4, i64: 8, i128: 16,
};

export interface FieldDef {
  readonly name: string;
  readonly type: ScalarType;
  readonly doc: string;
}

/** A trailing variable-length array of fixed-size records (at most one per frame, always last). */
export interface TailDef {
  readonly name: string;
  readonly fields: readonly FieldDef[];
  readonly maxCount: number;
  readonly doc: string;
}

export interface FrameDef {
  readonly type: number;
  readonly name: string;
  readonly direction: 'device-to-host' | 'host-to-device';
  readonly doc: string;
  readonly fields: readonly FieldDef[];
  readonly tail?: TailDef;
}

// Generic so that `as const` below keeps each field's literal name and type: codec.ts derives the
// precise per-frame TypeScript types of decoded fields from them.
const f = <N extends string, T extends ScalarType>(name: N, type: T, doc: string) => ({ name, type, doc }) as const;

export const WINDOW_MODE = { CYCLES: 0, FIXED: 1 } as const;
export const ADC_PART = { SIMULATED: 0, AD7357: 1 } as const;
export const BOARD = { SIMULATED: 0, ORANGECRAB_R0_1: 1, ORANGECRAB_R0_2: 2, RTL_TWIN: 3 } as const;
export const CAPTURE_TRIGGER = { IMMEDIATE: 0, V_RISING: 1, V_FALLING: 2, I_RISING: 3, I_FALLING: 4 } as const;
export const ACK_STATUS = { OK: 0, BAD_ARGS: 1, BUSY: 2, UNKNOWN_COMMAND: 3, BAD_LENGTH: 4 } as const;
/**
 * Where the calibration in effect came from, and whether the device's flash holds it (the record in
 * the flash's user area survives resets; firmware/src/calstore.c). The host's stored calibration wins:
 * it re-pushes it with cmd_calibrate, which the device applies at once and saves.
 */
export const CALIBRATION_SOURCE = {
  /** Reset values: the flash holds no record. */
  DEFAULTS: 0,
  /** The flash's record, applied at boot before the first window. */
  FLASH: 1,
  /** The flash's record failed its CRC or has an unknown version: reset values instead. */
  BAD_RECORD: 2,
  /** The flash did not answer: reset values, and nothing can be saved. */
  NO_FLASH: 3,
  /** From cmd_calibrate, saved in the flash. */
  HOST_SAVED: 4,
  /** From cmd_calibrate, not saved (yet): the save is under way, or failed (the host should push again). */
  HOST_UNSAVED: 5,
} as const;

/**
 * cmd_adc_delay: the `read_delay` that only asks (changes nothing), and the layout of its ack's value:
 * bits 7..0 ADC.READ_DELAY in effect, bit 8 ADC.STATUS.SETTLED (the read clock's phase has got there),
 * bits 31..16 the low 16 bits of the adc_errors counter (a difference of two answers counts the
 * leading-zero errors between them, modulo 65536).
 */
export const ADC_DELAY = {
  KEEP: 0xffff,
  MAX: 255,
  VALUE_MASK: 0xff,
  SETTLED_BIT: 1 << 8,
  ERRORS_SHIFT: 16,
} as const;

/**
 * How a device's transmit ring gives way to a host that reads slower than the device sends: the waveform
 * stream leaves STREAM_BYTES free for every other frame, so stream frames are the ones dropped (counted,
 * their seq taken), never an identify, an ack, a window or a capture chunk; capture chunks wait for room
 * and leave CAPTURE_BYTES free, so windows, energy and acks keep flowing during a capture. The firmware
 * and the simulated device both hold to it.
 */
export const TX_RESERVE = { STREAM_BYTES: 2048, CAPTURE_BYTES: 1024 } as const;

/**
 * The device's transmit ring (a power of two): 8 KiB holds ~85 window frames (~0.4 s at 200 Hz windows)
 * or seven full capture chunks, enough to ride out a host that stops reading for a moment. Frames that
 * find no room in it are dropped and counted (status.frames_dropped).
 */
export const TX_RING = { BYTES: 8192 } as const;

/** Window flags, bit positions as in docs/dsp.md. */
export const WINDOW_FLAG = {
  CLIP_V: 1 << 0,
  CLIP_I: 1 << 1,
  SAT_V: 1 << 2,
  SAT_I: 1 << 3,
  PARTIAL: 1 << 4,
  TIMEOUT: 1 << 5,
  CONFIG: 1 << 6,
  ZC_OVERFLOW: 1 << 7,
} as const;

const windowConfigFields = [
  f('mode', 'u8', 'WINDOW_MODE: 0 whole cycles, 1 fixed sample count'),
  f('cycles', 'u16', 'K, cycles per window in CYCLES mode (1..1000)'),
  f('fixed_samples', 'u32', 'N, samples per window in FIXED mode (1..2^24)'),
  f('max_samples', 'u32', 'M, timeout of a CYCLES window in samples (1..2^24)'),
  f('zc_hysteresis', 'u16', 'zero-crossing arming threshold, ADC LSB (0..32767)'),
] as const;

const calibrationFields = [
  f('v_offset', 'i16', 'voltage offset, quarter-LSB of the centred ADC code'),
  f('i_offset', 'i16', 'current offset, quarter-LSB of the centred ADC code'),
  f('v_gain', 'u16', 'voltage gain, Q2.14 (16384 = 1.0)'),
  f('i_gain', 'u16', 'current gain, Q2.14 (16384 = 1.0)'),
  f('phase', 'i32', 'delay of current vs voltage in 1/65536 sample; negative delays voltage'),
] as const;

export const FRAMES = [
  {
    type: 0x01,
    name: 'identify',
    direction: 'device-to-host',
    doc: 'Who the device is and how it samples. Sent at boot and in answer to cmd_identify.',
    fields: [
      f('device_id', 'u64', 'unique id: the 64-bit unique ID of the board\'s configuration flash (SPI command 0x4B), random for simulations'),
      f('boot_id', 'u32', 'changes at every device reset: a new value opens a new energy epoch'),
      f('board', 'u8', 'BOARD enum'),
      f('adc_part', 'u8', 'ADC_PART enum'),
      f('protocol_version', 'u8', 'PROTOCOL_VERSION the firmware was built with'),
      f('gateware_version', 'u32', 'major << 16 | minor << 8 | patch'),
      f('firmware_version', 'u32', 'major << 16 | minor << 8 | patch'),
      f('sample_rate_num', 'u32', 'sample rate numerator, Hz'),
      f('sample_rate_den', 'u32', 'sample rate denominator (rate = num / den)'),
      f('capture_depth', 'u16', 'sample pairs the capture buffer holds'),
      f('config_seq', 'u16', 'configuration commits so far'),
      ...windowConfigFields,
      ...calibrationFields,
      f('calibration_source', 'u8', 'CALIBRATION_SOURCE: where the calibration above came from, and whether it is saved'),
    ],
  },
  {
    type: 0x02,
    name: 'window',
    direction: 'device-to-host',
    doc: 'One measurement window: the exact integer sums of docs/dsp.md.',
    fields: [
      f('end_index', 'u64', 'sample index of the first sample after the window'),
      f('samples', 'u32', 'samples in the window'),
      f('sum_v', 'i64', 'Σ v'),
      f('sum_i', 'i64', 'Σ i'),
      f('sum_vv', 'u64', 'Σ v²'),
      f('sum_ii', 'u64', 'Σ i²'),
      f('sum_vi', 'i64', 'Σ v·i'),
      f('min_v', 'i16', 'smallest calibrated v'),
      f('max_v', 'i16', 'largest calibrated v'),
      f('min_i', 'i16', 'smallest calibrated i'),
      f('max_i', 'i16', 'largest calibrated i'),
      f('zc_count', 'u16', 'negative-to-positive crossings of v in the window'),
      f('zc_first_offset', 'u32', 'first crossing, samples after the window start'),
      f('zc_first_prev', 'i16', 'v before the first crossing'),
      f('zc_first_cur', 'i16', 'v at the first crossing'),
      f('zc_last_offset', 'u32', 'last crossing, samples after the window start'),
      f('zc_last_prev', 'i16', 'v before the last crossing'),
      f('zc_last_cur', 'i16', 'v at the last crossing'),
      f('flags', 'u16', 'WINDOW_FLAG bits'),
      f('config_seq', 'u16', 'configuration the window was computed with'),
    ],
  },
  {
    type: 0x03,
    name: 'energy',
    direction: 'device-to-host',
    doc: 'Snapshot of the never-wrapping energy accumulator E (Σ v·i since reset), taken at a window end.',
    fields: [
      f('end_index', 'u64', 'the accumulator holds every sample before this index'),
      f('energy', 'i128', 'E, sign-extended from the 96-bit accumulator'),
      f('boot_id', 'u32', 'boot the accumulator belongs to'),
    ],
  },
  {
    type: 0x04,
    name: 'capture_chunk',
    direction: 'device-to-host',
    doc: 'Part of a raw waveform capture: calibrated sample pairs, one every `decimation` samples.',
    fields: [
      f('capture_id', 'u16', 'which capture (the ack of cmd_capture names it)'),
      f('chunk_index', 'u16', 'position of this chunk'),
      f('chunk_count', 'u16', 'chunks in the whole capture'),
      f('first_index', 'u64', 'sample index of the first pair of this chunk'),
      f('trigger_index', 'u64', 'sample index of the trigger (a captured pair)'),
      f('config_seq', 'u16', 'configuration the samples were calibrated with'),
      f('decimation', 'u16', 'D, samples between two pairs: pair k of the chunk is sample first_index + k·D'),
    ],
    tail: {
      name: 'pairs',
      fields: [f('v', 'i16', 'calibrated voltage sample'), f('i', 'i16', 'calibrated current sample')],
      maxCount: 256,
      doc: 'sample pairs, oldest first',
    },
  },
  {
    type: 0x05,
    name: 'status',
    direction: 'device-to-host',
    doc: 'Health counters, sent once a second and in answer to cmd_status.',
    fields: [
      f('boot_id', 'u32', 'as in identify'),
      f('uptime_ms', 'u32', 'milliseconds since reset'),
      f('frames_dropped', 'u32', 'frames not sent whole because the link was full (their seq numbers are skipped)'),
      f('fifo_overflows', 'u32', 'windows lost because the result FIFO was full'),
      f('samples_dropped', 'u32', 'ADC samples lost between capture and DSP'),
      f('adc_errors', 'u32', 'ADC frames with a bad leading-zero pattern'),
      f('watchdog_resets', 'u16', 'resets caused by the watchdog'),
      f('config_seq', 'u16', 'configuration commits so far'),
      f('link_stalls', 'u32', 'times a link took no byte for 500 ms while frames waited: frames went to the other link, and a frame torn there was ended with a delimiter and counted in frames_dropped'),
      f('uart_rx_overruns', 'u16', 'bytes the UART dropped because its receive FIFO was full (saturates at 65535)'),
      f('waveform_drops', 'u32', 'decimated waveform samples lost in the device (the gateware FIFO was full; saturates): the host sees them as a jump in the waveform frames\' first_index'),
    ],
  },
  {
    type: 0x06,
    name: 'ack',
    direction: 'device-to-host',
    doc: 'Answer to every host command.',
    fields: [
      f('command_seq', 'u32', 'seq of the command answered'),
      f('command_type', 'u8', 'type of the command answered'),
      f('status', 'u8', 'ACK_STATUS'),
      f('value', 'u32', 'command-specific result (cmd_capture: capture_id; cmd_configure: config_seq)'),
    ],
  },
  {
    type: 0x81,
    name: 'cmd_identify',
    direction: 'host-to-device',
    doc: 'Ask for an identify frame.',
    fields: [],
  },
  {
    type: 0x82,
    name: 'cmd_configure',
    direction: 'host-to-device',
    doc: 'Set the window rules; committed with the calibration at a sample boundary (docs/dsp.md).',
    fields: [...windowConfigFields],
  },
  {
    type: 0x83,
    name: 'cmd_calibrate',
    direction: 'host-to-device',
    doc: 'Set offsets, gains and phase; committed at a sample boundary (docs/dsp.md).',
    fields: [...calibrationFields],
  },
  {
    type: 0x84,
    name: 'cmd_capture',
    direction: 'host-to-device',
    doc: 'Arm a raw capture.',
    fields: [
      f('pairs', 'u16', 'sample pairs to capture (1..capture_depth)'),
      f('trigger', 'u8', 'CAPTURE_TRIGGER'),
      f('level', 'i16', 'trigger level, ADC LSB'),
      f('pretrigger', 'u16', 'pairs kept from before the trigger (< pairs)'),
      f('decimation', 'u16', 'D, keep every D-th sample pair (1..65535; 1 = every sample)'),
      f('hysteresis', 'u16', 'trigger hysteresis, ADC LSB (0..32767): the channel must go beyond level ∓ hysteresis before a crossing counts'),
    ],
  },
  {
    type: 0x85,
    name: 'cmd_status',
    direction: 'host-to-device',
    doc: 'Ask for a status frame.',
    fields: [],
  },
  {
    type: 0x86,
    name: 'cmd_reboot',
    direction: 'host-to-device',
    doc: 'Reconfigure the FPGA from flash (PROGRAMN): after the ack and any calibration save, foboot starts again (r0.1: it stays in DFU; r0.2: it starts this bitstream, or stays in DFU while the button is held).',
    fields: [],
  },
  {
    type: 0x07,
    name: 'waveform',
    direction: 'device-to-host',
    doc: 'A block of the decimated waveform stream (docs/dsp.md, Decimated waveform): consecutive stream samples at fs/512, sent continuously.',
    fields: [
      f('first_index', 'u64', 'the 4 Msps sample index n_j the first sample represents (n_j = 322 + 512·j); the next frame continues at first_index + 512·count unless samples were lost'),
    ],
    tail: {
      name: 'pairs',
      fields: [f('v', 'i32', 'decimated voltage, q (19-bit signed)'), f('i', 'i32', 'decimated current, q (19-bit signed)')],
      maxCount: 64,
      doc: 'stream samples, oldest first, 512 input samples apart',
    },
  },
  {
    type: 0x87,
    name: 'cmd_adc_delay',
    direction: 'host-to-device',
    doc: 'Set or read the ADC capture point, ADC.READ_DELAY (docs/soc.md), for the bring-up scan (`crabwatt bringup`). The ack\'s value: ADC_DELAY layout (READ_DELAY, SETTLED, adc_errors). Not saved: a reset returns the gateware\'s default (43), so the host sets it again on connect.',
    fields: [
      f('read_delay', 'u16', 'capture point in 1/64 SCLK periods (0..255), or ADC_DELAY.KEEP (0xFFFF) to only ask'),
    ],
  },
] as const satisfies readonly FrameDef[];

export type FrameName = (typeof FRAMES)[number]['name'];
