// FrameDecoder: the streaming side of the codec. Pure (no I/O, no timers): bytes in, frames out,
// with the counters a link reports. Re-exported by codec.ts, which is where other modules import it.
//
// Two ways in, so it serves both a raw byte stream and @serialport/parser-delimiter's output:
//   push(bytes)       arbitrary pieces of the raw stream; the decoder splits on 0x00 itself
//   pushChunk(chunk)  one delimiter-stripped chunk (what DelimiterParser emits); same as push(chunk)
//                     followed by a delimiter
// Both return the frames completed by that call, in wire order; errors, sequence gaps and device
// resets are also reported through the optional callbacks. No input makes it throw, and it never
// holds more than MAX_ENCODED_FRAME_BYTES of an unfinished chunk: longer runs are dropped as oversize.
//
// Sequence numbers: the sender increments a u32 per frame it generates, also for frames it then
// drops, so a jump forward by k+1 means k frames were lost (counted in seqGaps). Each direction is
// tracked apart. A jump backwards (by 2^31 or more, modulo 2^32) is not a gap but a restart of the
// counter, normally a device reset whose new boot_id we have not seen yet; a change of boot_id
// (identify, status and energy carry it) counts one reset and restarts sequence tracking.

import { decodeChunkRange, type DecodeFailure, type Frame } from './codec.ts';
import { LAYOUTS, MAX_ENCODED_FRAME_BYTES } from './layout.ts';

export interface DecoderCounters {
  /** Frames decoded and delivered. */
  frames: number;
  /** Chunks that COBS-decoded to a frame-sized message whose CRC did not match. */
  crcErrors: number;
  /** Chunks that were not valid COBS or too short to be a frame (garbage, torn frames). */
  framingErrors: number;
  /** Intact frames this host cannot use: other protocol version, unknown type, wrong length. */
  protocolErrors: number;
  /** Runs of bytes longer than any frame without a delimiter, dropped. */
  oversize: number;
  /** Frames the sender numbered but we never received (sum over all gaps). */
  seqGaps: number;
  /** Times the sequence number went backwards without a boot_id change being seen first. */
  seqRestarts: number;
  /** boot_id changes: device resets seen on this link. */
  resets: number;
  /** Bytes received, delimiters included. */
  bytes: number;
  /**
   * First chunks after restart() that were not a frame: the port was opened (or reopened) in the middle of a
   * frame, so its tail arrived without its head. Expected, not an error, and not counted in crcErrors or
   * framingErrors.
   */
  tornAtStart: number;
}

export interface SeqGap {
  /** seq we expected next. */
  expected: number;
  /** seq that arrived. */
  seq: number;
  /** Frames lost in between. */
  missed: number;
}

export interface DeviceReset {
  previousBootId: number;
  bootId: number;
}

export interface FrameDecoderOptions {
  onError?: (failure: DecodeFailure) => void;
  onGap?: (gap: SeqGap) => void;
  onReset?: (reset: DeviceReset) => void;
}

const SEQ_MODULUS = 2 ** 32;
const SEQ_HALF = 2 ** 31;

/** Frames that carry the device's boot_id, found from the definition rather than listed by hand. */
const FRAMES_WITH_BOOT_ID = new Set(
  [...LAYOUTS.values()].filter((l) => l.fields.some((f) => f.name === 'boot_id')).map((l) => l.name as string),
);

export class FrameDecoder {
  readonly counters: DecoderCounters = {
    frames: 0, crcErrors: 0, framingErrors: 0, protocolErrors: 0, oversize: 0,
    seqGaps: 0, seqRestarts: 0, resets: 0, bytes: 0, tornAtStart: 0,
  };

  private readonly options: FrameDecoderOptions;
  /** The unfinished chunk: bytes since the last delimiter. */
  private readonly partial = new Uint8Array(MAX_ENCODED_FRAME_BYTES);
  private partialBytes = 0;
  /** True while skipping the rest of an oversize run until the next delimiter. */
  private discarding = false;
  private readonly lastSeq = { 'device-to-host': -1, 'host-to-device': -1 };
  private knownBootId: number | undefined;
  /** Set by restart(): the next non-empty chunk may be the tail of a frame whose head was never read. */
  private atStart = false;

  constructor(options: FrameDecoderOptions = {}) {
    this.options = options;
  }

  /** The device's boot_id once a frame carrying it has arrived. */
  get bootId(): number | undefined {
    return this.knownBootId;
  }

  push(bytes: Uint8Array): Frame[] {
    const out: Frame[] = [];
    this.counters.bytes += bytes.length;
    let start = 0;
    while (start < bytes.length) {
      const zero = bytes.indexOf(0, start);
      const end = zero === -1 ? bytes.length : zero;
      this.accumulate(bytes, start, end);
      if (zero === -1) break;
      this.finishChunk(bytes, start, end, out);
      start = zero + 1;
    }
    return out;
  }

  pushChunk(chunk: Uint8Array): Frame[] {
    if (this.partialBytes === 0 && !this.discarding && chunk.indexOf(0) === -1) {
      // The usual case after a DelimiterParser: one whole chunk, decoded where it lies.
      const out: Frame[] = [];
      this.counters.bytes += chunk.length + 1;
      if (chunk.length > 0) this.decodeChunk(chunk, 0, chunk.length, out);
      return out;
    }
    const out = this.push(chunk);
    this.counters.bytes += 1;
    this.finishChunk(chunk, chunk.length, chunk.length, out);
    return out;
  }

  /** Forget the unfinished chunk, e.g. when the port closes: its end will never arrive. */
  discardPartial(): void {
    this.partialBytes = 0;
    this.discarding = false;
  }

  /**
   * The stream starts again at an unknown position, e.g. a port just opened on a device that is already
   * streaming (opening also flushes whatever the OS had buffered). The first chunk is decoded as usual; only
   * when it fails as a torn frame would (bad CRC, bad COBS, too short) is it counted in tornAtStart instead of
   * as an error.
   */
  restart(): void {
    this.discardPartial();
    this.atStart = true;
  }

  /** A chunk never reached the decoder (an upstream parser dropped an oversize run): the start is over. */
  chunkSkipped(): void {
    this.atStart = false;
  }

  /**
   * Add bytes[start, end) (no delimiter inside) to the unfinished chunk. A chunk that lies wholly
   * inside one input buffer is decoded in place by finishChunk, so only straddling pieces are copied.
   */
  private accumulate(bytes: Uint8Array, start: number, end: number): void {
    if (this.discarding || start === end) return;
    const straddles = this.partialBytes > 0 || end === bytes.length;
    if (!straddles) {
      if (end - start > MAX_ENCODED_FRAME_BYTES) this.startDiscarding();
      return;
    }
    if (this.partialBytes + (end - start) > MAX_ENCODED_FRAME_BYTES) {
      this.startDiscarding();
      return;
    }
    this.partial.set(bytes.subarray(start, end), this.partialBytes);
    this.partialBytes += end - start;
  }

  private startDiscarding(): void {
    this.atStart = false; // an oversize run is no torn frame, and it ends the start as any chunk does
    this.counters.oversize++;
    this.partialBytes = 0;
    this.discarding = true;
    this.options.onError?.({
      ok: false,
      error: 'oversize',
      detail: `more than ${MAX_ENCODED_FRAME_BYTES} bytes without a delimiter, dropped`,
    });
  }

  /** A delimiter ends the chunk made of the partial bytes, or of bytes[start, end) when none straddled. */
  private finishChunk(bytes: Uint8Array, start: number, end: number, out: Frame[]): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    // Empty chunks (0x00 0x00) are idle fill a sender may use to flush a torn frame: not errors.
    if (this.partialBytes > 0) {
      const length = this.partialBytes;
      this.partialBytes = 0;
      this.decodeChunk(this.partial, 0, length, out);
    } else if (end > start) {
      this.decodeChunk(bytes, start, end, out);
    }
  }

  /** Decode the delimiter-stripped chunk bytes[start, end) where it lies (no copy). */
  private decodeChunk(bytes: Uint8Array, start: number, end: number, out: Frame[]): void {
    const result = decodeChunkRange(bytes, start, end);
    const failure = result as DecodeFailure;
    const first = this.atStart;
    this.atStart = false;
    if (failure.ok === false) {
      if (first && (failure.error === 'crc' || failure.error === 'cobs' || failure.error === 'short')) {
        this.counters.tornAtStart++;
        return;
      }
      switch (failure.error) {
        case 'crc':
          this.counters.crcErrors++;
          break;
        case 'cobs':
        case 'short':
          this.counters.framingErrors++;
          break;
        case 'oversize':
          this.counters.oversize++;
          break;
        case 'version':
        case 'type':
        case 'length':
          this.counters.protocolErrors++;
          break;
      }
      this.options.onError?.(failure);
      return;
    }
    const frame = result as Frame;
    this.track(frame);
    this.counters.frames++;
    out.push(frame);
  }

  private track(frame: Frame): void {
    const direction = (frame.type & 0x80) === 0 ? 'device-to-host' : 'host-to-device';
    if (FRAMES_WITH_BOOT_ID.has(frame.name)) {
      const bootId = (frame.fields as { boot_id: number }).boot_id;
      if (this.knownBootId !== undefined && bootId !== this.knownBootId) {
        this.counters.resets++;
        this.options.onReset?.({ previousBootId: this.knownBootId, bootId });
        this.lastSeq[direction] = -1;
      }
      this.knownBootId = bootId;
    }
    const last = this.lastSeq[direction];
    this.lastSeq[direction] = frame.seq;
    if (last < 0) return;
    const expected = (last + 1) % SEQ_MODULUS;
    const missed = (frame.seq - expected + SEQ_MODULUS) % SEQ_MODULUS;
    if (missed === 0) return;
    if (missed < SEQ_HALF) {
      this.counters.seqGaps += missed;
      this.options.onGap?.({ expected, seq: frame.seq, missed });
    } else {
      this.counters.seqRestarts++;
    }
  }
}
