// The fleet stream on the wire: a host publishes, per device, numbered messages carrying the frames its ingest
// handled (identify, window, energy, status; re-encoded in the device's own protocol, so every bigint stays
// exact), with the host's clock at each frame and the scale the host booked them with. A collector feeds them
// to the same ingest and ledger, so its energy equals the host's to the nWh by construction.
//
// Topics: crabwatt/fleet/<device>/frames (host → collector, QoS 1) and crabwatt/fleet/<device>/ack (collector →
// host, retained: `<stream>:<seq>`, everything up to seq is on the collector's disk).
//
// Message: 'CWF1', stream u32 (random per host database: a new database is a new stream), seq f64 (an integer),
// first f64 (the oldest seq the host still holds), then the body stored in the outbox: kind u8, kv f64, ki f64,
// identify length u16 + the latest identify frame (so a collector that restarted can book without waiting for
// the next one), frame count u16, and per frame: host ms f64, length u16, bytes. Little-endian.

import { decodeFrameBytes, type Frame } from '../protocol/codec.ts';
import type { DeviceKind } from '../ingest/ingest.ts';

export const FRAMES_TOPIC = 'crabwatt/fleet/+/frames';
export const framesTopic = (hex: string): string => `crabwatt/fleet/${hex}/frames`;
export const ackTopic = (hex: string): string => `crabwatt/fleet/${hex}/ack`;
export const ACK_TOPIC = 'crabwatt/fleet/+/ack';
/** The device of a fleet topic, or undefined for another topic. */
export function topicDevice(topic: string): string | undefined {
  return /^crabwatt\/fleet\/([0-9a-f]{16})\/(frames|ack)$/.exec(topic)?.[1];
}

const MAGIC = 0x31465743; // 'CWF1' little-endian
const HEADER_BYTES = 4 + 4 + 8 + 8;
const KINDS: readonly DeviceKind[] = ['hardware', 'simulated', 'rtl'];

export class FleetFormatError extends Error {
  override readonly name = 'FleetFormatError';
}

export interface StampedFrame {
  hostMs: number;
  bytes: Uint8Array;
}

export interface FleetBody {
  kind: DeviceKind;
  kv: number;
  ki: number;
  identify: Uint8Array | undefined;
  frames: StampedFrame[];
}

export function encodeBody(body: FleetBody): Buffer {
  const identify = body.identify ?? new Uint8Array(0);
  const size = 1 + 8 + 8 + 2 + identify.length + 2 + body.frames.reduce((n, f) => n + 10 + f.bytes.length, 0);
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt8(KINDS.indexOf(body.kind), 0);
  at = out.writeDoubleLE(body.kv, at);
  at = out.writeDoubleLE(body.ki, at);
  at = out.writeUInt16LE(identify.length, at);
  out.set(identify, at);
  at += identify.length;
  at = out.writeUInt16LE(body.frames.length, at);
  for (const f of body.frames) {
    at = out.writeDoubleLE(f.hostMs, at);
    at = out.writeUInt16LE(f.bytes.length, at);
    out.set(f.bytes, at);
    at += f.bytes.length;
  }
  return out;
}

export function encodeMessage(stream: number, seq: number, first: number, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(stream, 4);
  out.writeDoubleLE(seq, 8);
  out.writeDoubleLE(first, 16);
  out.set(body, HEADER_BYTES);
  return out;
}

export interface FleetMessage {
  stream: number;
  seq: number;
  first: number;
  kind: DeviceKind;
  kv: number;
  ki: number;
  identify: Frame | undefined;
  frames: { hostMs: number; frame: Frame }[];
}

function frameAt(payload: Buffer, at: number, length: number): Frame {
  if (at + length > payload.length) throw new FleetFormatError(`a frame of ${length} bytes runs past the message's end`);
  const r = decodeFrameBytes(payload.subarray(at, at + length));
  if (!r.ok) throw new FleetFormatError(`a frame does not decode: ${r.detail}`);
  return r.frame;
}

/** Decodes a fleet message; throws FleetFormatError for anything that is not one. */
export function decodeMessage(payload: Buffer): FleetMessage {
  if (payload.length < HEADER_BYTES + 21 || payload.readUInt32LE(0) !== MAGIC) {
    throw new FleetFormatError('not a crabwatt fleet message (version 1)');
  }
  const stream = payload.readUInt32LE(4);
  const seq = payload.readDoubleLE(8);
  const first = payload.readDoubleLE(16);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(first) || seq < 1 || first < 1 || first > seq) {
    throw new FleetFormatError(`sequence ${seq} (first ${first}) is not a whole number ≥ first ≥ 1`);
  }
  let at = HEADER_BYTES;
  const kind = KINDS[payload.readUInt8(at)];
  if (!kind) throw new FleetFormatError(`unknown device kind ${payload.readUInt8(at)}`);
  const kv = payload.readDoubleLE(at + 1);
  const ki = payload.readDoubleLE(at + 9);
  const identifyLength = payload.readUInt16LE(at + 17);
  at += 19;
  const identify = identifyLength > 0 ? frameAt(payload, at, identifyLength) : undefined;
  at += identifyLength;
  if (at + 2 > payload.length) throw new FleetFormatError('the message ends before its frame count');
  const count = payload.readUInt16LE(at);
  at += 2;
  const frames: FleetMessage['frames'] = [];
  for (let k = 0; k < count; k++) {
    if (at + 10 > payload.length) throw new FleetFormatError(`the message ends before frame ${k + 1} of ${count}`);
    const hostMs = payload.readDoubleLE(at);
    const length = payload.readUInt16LE(at + 8);
    frames.push({ hostMs, frame: frameAt(payload, at + 10, length) });
    at += 10 + length;
  }
  if (at !== payload.length) throw new FleetFormatError(`${payload.length - at} bytes after the last frame`);
  return { stream, seq, first, kind, kv, ki, identify, frames };
}
