import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  decodeFrameBytes,
  decodePayload,
  encodeFrame,
  encodeFrameBytes,
  type Frame,
} from '../../server/protocol/codec.ts';
import { cobsDecode, cobsEncode } from '../../server/protocol/cobs.ts';
import { crc32c } from '../../server/protocol/crc32c.ts';
import { HEADER_BYTES, MAX_FRAME_BYTES, PROTOCOL_VERSION } from '../../server/protocol/definition.ts';
import { LAYOUTS, MAX_ENCODED_FRAME_BYTES } from '../../server/protocol/layout.ts';
import { FRAME_NAMES, makeFrame, randomBytes, randomFrame, randomInt, seededRng, type Fill } from './fixtures.ts';

function roundTrip(spec: ReturnType<typeof makeFrame>) {
  const wire = encodeFrame(spec.name, spec.seq, spec.fields, spec.pairs);
  expect(wire[wire.length - 1]).toBe(0);
  expect(wire.subarray(0, -1).includes(0)).toBe(false);
  const result = decodePayload(wire.subarray(0, -1));
  if (!result.ok) throw new Error(`${spec.name}: ${result.error} ${result.detail}`);
  const frame = result.frame as Frame & { pairs?: unknown };
  expect(frame.name).toBe(spec.name);
  expect(frame.type).toBe(LAYOUTS.get(spec.name)!.type);
  expect(frame.seq).toBe(spec.seq);
  expect(frame.fields).toEqual(spec.fields);
  expect(frame.pairs).toEqual(spec.pairs);
}

describe('encodeFrame / decodePayload', () => {
  const fills: Fill[] = ['min', 'max', 'zero'];
  for (const name of FRAME_NAMES) {
    it.each(fills)(`round-trips ${name} with every field at its %s`, (fill) => {
      roundTrip(makeFrame(name, fill === 'max' ? 0xffffffff : 0, fill, seededRng(5)));
    });
  }

  it('round-trips thousands of random frames (random values, random tail lengths)', () => {
    const rng = seededRng(6);
    for (let k = 0; k < 3000; k++) roundTrip(randomFrame(rng, randomInt(rng, 0, 0xffffffff)));
  });

  it('keeps an i128 below -2^64 and u64 max exact', () => {
    const energy = -(2n ** 95n) + 12345n;
    const wire = encodeFrame('energy', 7, { end_index: 2n ** 64n - 1n, energy, boot_id: 0xdeadbeef });
    const r = decodePayload(wire.subarray(0, -1));
    expect(r.ok && r.frame.name === 'energy' && r.frame.fields).toEqual({
      end_index: 18446744073709551615n,
      energy,
      boot_id: 0xdeadbeef,
    });
  });

  it('decodes i128 values exactly on both sides of the 64-bit fast path', () => {
    const edges = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, -(2n ** 63n) - 1n, 2n ** 64n - 1n, 2n ** 64n, -(2n ** 64n),
      -(2n ** 64n) + 1n, -(2n ** 32n), 2n ** 32n, 2n ** 127n - 1n, -(2n ** 127n)];
    for (const energy of edges) {
      const r = decodePayload(encodeFrame('energy', 1, { end_index: 5n, energy, boot_id: 3 }).subarray(0, -1));
      expect(r.ok && r.frame.name === 'energy' && r.frame.fields.energy).toBe(energy);
    }
  });

  it('lays out the header and fields little-endian, as docs/protocol.md says', () => {
    const bytes = encodeFrameBytes('ack', 0x04030201, { command_seq: 0x0a0b0c0d, command_type: 0x84, status: 1, value: 258 });
    expect(Buffer.from(bytes).toString('hex')).toBe(
      PROTOCOL_VERSION.toString(16).padStart(2, '0') + '06' + '01020304' + '0d0c0b0a' + '84' + '01' + '02010000' +
        Buffer.from(new Uint32Array([crc32c(bytes.subarray(0, -4))]).buffer).toString('hex'),
    );
    const i128 = encodeFrameBytes('energy', 0, { end_index: 0n, energy: -2n, boot_id: 0 });
    expect(Buffer.from(i128.subarray(HEADER_BYTES + 8, HEADER_BYTES + 24)).toString('hex')).toBe('fe' + 'ff'.repeat(15));
  });

  it('derives precise types per frame name', () => {
    const r = decodePayload(new Uint8Array());
    if (r.ok && r.frame.name === 'window') {
      expectTypeOf(r.frame.fields.sum_vi).toEqualTypeOf<bigint>();
      expectTypeOf(r.frame.fields.min_v).toEqualTypeOf<number>();
    }
    if (r.ok && r.frame.name === 'capture_chunk') {
      expectTypeOf(r.frame.pairs).toEqualTypeOf<{ v: number; i: number }[]>();
    }
    if (r.ok && r.frame.name === 'energy') expectTypeOf(r.frame.fields.energy).toEqualTypeOf<bigint>();
    expect(r.ok).toBe(false);
  });
});

describe('encode validation', () => {
  const ack = { command_seq: 1, command_type: 0x81, status: 0, value: 0 };
  it('throws RangeError naming the field for out-of-range values', () => {
    expect(() => encodeFrame('ack', 0, { ...ack, status: 256 })).toThrow(/ack\.status/);
    expect(() => encodeFrame('ack', 0, { ...ack, status: 256 })).toThrow(RangeError);
    expect(() => encodeFrame('ack', 0, { ...ack, value: -1 })).toThrow(RangeError);
    expect(() => encodeFrame('ack', 0, { ...ack, value: 1.5 })).toThrow(RangeError);
    expect(() => encodeFrame('ack', 2 ** 32, ack)).toThrow(/seq/);
    expect(() => encodeFrame('energy', 0, { end_index: -1n, energy: 0n, boot_id: 0 })).toThrow(/end_index/);
    expect(() => encodeFrame('energy', 0, { end_index: 0n, energy: 2n ** 127n, boot_id: 0 })).toThrow(/energy/);
    expect(() => encodeFrame('cmd_calibrate', 0, { v_offset: 32768, i_offset: 0, v_gain: 0, i_gain: 0, phase: 0 })).toThrow(
      /v_offset/,
    );
  });
  it('throws TypeError for missing, unknown or mistyped fields', () => {
    const { value: _, ...missing } = ack;
    expect(() => encodeFrame('ack', 0, missing as typeof ack)).toThrow(/ack\.value is missing/);
    expect(() => encodeFrame('ack', 0, { ...ack, extra: 1 } as typeof ack)).toThrow(/unknown field extra/);
    expect(() => encodeFrame('energy', 0, { end_index: 0 as unknown as bigint, energy: 0n, boot_id: 0 })).toThrow(TypeError);
    expect(() => encodeFrame('nope' as 'ack', 0, ack)).toThrow(/unknown frame/);
  });
  it('checks the capture tail', () => {
    const spec = makeFrame('capture_chunk', 0, 'zero', seededRng(7), 256);
    expect(() => encodeFrame('capture_chunk', 0, spec.fields, [...spec.pairs!, { v: 0, i: 0 }])).toThrow(/at most 256/);
    expect(() => encodeFrame('capture_chunk', 0, spec.fields, [{ v: 40000, i: 0 }])).toThrow(/pairs\[0\]\.v/);
    expect(() => encodeFrame('ack', 0, ack, [{ v: 0, i: 0 }])).toThrow(/no trailing/);
    // the longest frame fits the declared maximum
    expect(encodeFrameBytes('capture_chunk', 0, spec.fields, spec.pairs).length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(encodeFrame('capture_chunk', 0, spec.fields, spec.pairs).length - 1).toBeLessThanOrEqual(MAX_ENCODED_FRAME_BYTES);
  });
});

describe('decode errors', () => {
  const good = encodeFrameBytes('status', 9, {
    boot_id: 1, uptime_ms: 2, frames_dropped: 3, fifo_overflows: 4, samples_dropped: 5, adc_errors: 6,
    watchdog_resets: 7, config_seq: 8, link_stalls: 9, uart_rx_overruns: 10, waveform_drops: 11,
  });
  /** Re-seal bytes with a correct CRC, to reach the checks behind the CRC. */
  const reseal = (bytes: Uint8Array) => {
    const out = Uint8Array.from(bytes);
    new DataView(out.buffer).setUint32(out.length - 4, crc32c(out.subarray(0, -4)), true);
    return out;
  };
  const kind = (bytes: Uint8Array) => {
    const r = decodeFrameBytes(bytes);
    return r.ok ? 'ok' : r.error;
  };

  it('classifies each failure', () => {
    expect(kind(good)).toBe('ok');
    expect(kind(good.subarray(0, 9))).toBe('short');
    const flipped = Uint8Array.from(good);
    flipped[10]! ^= 0x10;
    expect(kind(flipped)).toBe('crc');
    const v2 = Uint8Array.from(good);
    v2[0] = PROTOCOL_VERSION + 1;
    expect(kind(reseal(v2))).toBe('version');
    const r = decodeFrameBytes(reseal(v2));
    expect(!r.ok && r.detail).toMatch(/reflash/);
    const unknown = Uint8Array.from(good);
    unknown[1] = 0x7f;
    expect(kind(reseal(unknown))).toBe('type');
    const long = new Uint8Array(good.length + 1);
    long.set(good.subarray(0, -4));
    expect(kind(reseal(long))).toBe('length');
    expect(kind(reseal(good.subarray(0, -1)))).toBe('length');
    expect(decodePayload(new Uint8Array(MAX_ENCODED_FRAME_BYTES + 1).fill(1))).toMatchObject({ ok: false, error: 'oversize' });
    expect(decodePayload(Uint8Array.of(5, 1))).toMatchObject({ ok: false, error: 'cobs' });
  });

  it('rejects a capture tail that is not a whole number of records', () => {
    const spec = makeFrame('capture_chunk', 0, 'random', seededRng(8), 3);
    const bytes = encodeFrameBytes('capture_chunk', 0, spec.fields, spec.pairs);
    const torn = new Uint8Array(bytes.length - 2);
    torn.set(bytes.subarray(0, torn.length - 4));
    expect(kind(reseal(torn))).toBe('length');
  });

  it('rejects every single-bit flip of every frame type', () => {
    const rng = seededRng(9);
    for (const name of FRAME_NAMES) {
      const spec = makeFrame(name, 1, 'random', rng, 4);
      const bytes = encodeFrameBytes(spec.name, spec.seq, spec.fields, spec.pairs);
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        const copy = Uint8Array.from(bytes);
        copy[bit >> 3]! ^= 1 << (bit & 7);
        expect(kind(copy)).toBe('crc');
      }
    }
  });

  it('never throws on thousands of random byte strings, raw or COBS-wrapped', () => {
    const rng = seededRng(10);
    for (let k = 0; k < 20000; k++) {
      const junk = randomBytes(rng, randomInt(rng, 0, k % 50 === 0 ? 1300 : 80));
      expect(decodePayload(junk).ok).toBe(false);
      // A COBS-valid wrapper reaches the CRC check and beyond.
      expect(decodePayload(cobsEncode(junk)).ok).toBe(false);
    }
  });

  it('never throws on random headers with a valid CRC (reaches version/type/length checks)', () => {
    const rng = seededRng(11);
    for (let k = 0; k < 20000; k++) {
      const bytes = randomBytes(rng, randomInt(rng, 10, 80));
      bytes[0] = PROTOCOL_VERSION;
      if (k % 2) bytes[1] = [...LAYOUTS.values()][k % LAYOUTS.size]!.type;
      const r = decodeFrameBytes(reseal(bytes));
      if (r.ok) {
        // Only a body of exactly the right length may decode, and it must re-encode to the same bytes.
        const f = r.frame as Frame & { pairs?: { v: number; i: number }[] };
        const again = encodeFrameBytes(f.name, f.seq, f.fields as never, f.pairs);
        expect(Buffer.from(again).equals(Buffer.from(reseal(bytes)))).toBe(true);
      }
    }
    const d = cobsDecode(encodeFrame('cmd_status', 3, {}).subarray(0, -1));
    expect(d.ok && d.data.length).toBe(10);
  });
});
