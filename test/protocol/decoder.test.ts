import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, type Frame } from '../../server/protocol/codec.ts';
import { MAX_ENCODED_FRAME_BYTES } from '../../server/protocol/layout.ts';
import { makeFrame, randomBytes, randomInt, seededRng, type Rng } from './fixtures.ts';

const DEVICE_FRAMES = ['identify', 'window', 'energy', 'capture_chunk', 'status', 'ack'] as const;
const BOOT_ID = 0x1234abcd;

/** Consecutively numbered device frames of one boot, encoded; capture tails kept short for speed. */
function deviceStream(rng: Rng, count: number, firstSeq = 0): Buffer[] {
  const out: Buffer[] = [];
  for (let k = 0; k < count; k++) {
    const name = DEVICE_FRAMES[randomInt(rng, 0, DEVICE_FRAMES.length - 1)]!;
    const spec = makeFrame(name, (firstSeq + k) >>> 0, 'random', rng, randomInt(rng, 0, 12));
    if ('boot_id' in spec.fields) (spec.fields as { boot_id: number }).boot_id = BOOT_ID;
    out.push(encodeFrame(spec.name, spec.seq, spec.fields, spec.pairs));
  }
  return out;
}

/** What a correct receiver must deliver: every chunk between delimiters that is byte-equal to a frame sent. */
function expectedFrames(stream: Buffer, frames: Buffer[]): { seqs: number[]; badChunks: number } {
  const byBody = new Map(frames.map((f) => [f.subarray(0, -1).toString('hex'), f.readUInt32LE(0)]));
  const seqs: number[] = [];
  let badChunks = 0;
  let start = 0;
  for (let z = stream.indexOf(0); z !== -1; start = z + 1, z = stream.indexOf(0, start)) {
    const chunk = stream.subarray(start, z);
    if (chunk.length === 0) continue;
    if (byBody.has(chunk.toString('hex'))) seqs.push(seqOf(chunk));
    else badChunks++;
  }
  return { seqs, badChunks };
}

/** seq of an encoded frame, by decoding it with a fresh decoder (the codec itself is tested elsewhere). */
function seqOf(chunk: Buffer): number {
  return new FrameDecoder().pushChunk(chunk)[0]!.seq;
}

function feed(decoder: FrameDecoder, stream: Uint8Array, cuts: number[]): Frame[] {
  const out: Frame[] = [];
  let at = 0;
  for (const cut of [...cuts, stream.length]) {
    out.push(...decoder.push(stream.subarray(at, cut)));
    at = cut;
  }
  return out;
}

const errorsOf = (d: FrameDecoder) =>
  d.counters.crcErrors + d.counters.framingErrors + d.counters.protocolErrors + d.counters.oversize;

describe('FrameDecoder on clean streams', () => {
  const frames = deviceStream(seededRng(20), 40);
  const stream = Buffer.concat(frames);
  const allSeqs = frames.map((_, k) => k);

  it('delivers every frame, in order, whatever the split point', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const got = feed(d, stream, [cut]);
      expect(got.map((f) => f.seq)).toEqual(allSeqs);
      expect(d.counters).toMatchObject({ frames: 40, bytes: stream.length, seqGaps: 0, crcErrors: 0, framingErrors: 0 });
    }
  });

  it('delivers every frame byte by byte and under random chunkings, with identical content', () => {
    const reference = new FrameDecoder().push(stream);
    const oneByOne = feed(new FrameDecoder(), stream, Array.from({ length: stream.length }, (_, k) => k));
    expect(oneByOne).toEqual(reference);
    const rng = seededRng(21);
    for (let trial = 0; trial < 300; trial++) {
      const cuts: number[] = [];
      for (let at = randomInt(rng, 0, 300); at < stream.length; at += randomInt(rng, 1, 300)) cuts.push(at);
      expect(feed(new FrameDecoder(), stream, cuts)).toEqual(reference);
    }
  });

  it('accepts delimiter-stripped chunks from a DelimiterParser (pushChunk)', () => {
    const d = new FrameDecoder();
    const got = frames.flatMap((f) => d.pushChunk(f.subarray(0, -1)));
    expect(got).toEqual(new FrameDecoder().push(stream));
    expect(d.counters.bytes).toBe(stream.length);
  });

  it('ignores idle delimiters between frames', () => {
    const padded = Buffer.concat(frames.flatMap((f) => [Buffer.alloc(3), f]));
    const d = new FrameDecoder();
    expect(d.push(padded).map((f) => f.seq)).toEqual(allSeqs);
    expect(errorsOf(d)).toBe(0);
  });
});

describe('FrameDecoder on damaged streams', () => {
  it('garbage between frames: exactly the intact frames come through once, in order; errors are counted', () => {
    const rng = seededRng(22);
    for (let trial = 0; trial < 30; trial++) {
      const frames = deviceStream(rng, 30);
      const parts: Buffer[] = [];
      for (const f of frames) {
        if (rng() < 0.5) {
          // Short junk (with zeros), or a long zero-free run that must be dropped as oversize.
          const junk = rng() < 0.1
            ? Buffer.from(randomBytes(rng, randomInt(rng, MAX_ENCODED_FRAME_BYTES, 3000)).map((b) => b | 1))
            : Buffer.from(randomBytes(rng, randomInt(rng, 1, 200)));
          parts.push(junk);
          // Half of the time the junk is closed by a delimiter, as the firmware does after a torn frame.
          if (rng() < 0.5) parts.push(Buffer.alloc(1));
        }
        parts.push(f);
      }
      const stream = Buffer.concat(parts);
      const want = expectedFrames(stream, frames);
      const d = new FrameDecoder();
      const cuts = Array.from({ length: 40 }, () => randomInt(rng, 0, stream.length)).sort((a, b) => a - b);
      const got = feed(d, stream, cuts);
      expect(got.map((f) => f.seq)).toEqual(want.seqs);
      expect(d.counters.frames).toBe(want.seqs.length);
      expect(errorsOf(d)).toBe(want.badChunks);
      const span = want.seqs.length ? want.seqs.at(-1)! - want.seqs[0]! + 1 : 0;
      expect(d.counters.seqGaps).toBe(span - want.seqs.length);
    }
  });

  it('every frame closed by a delimiter after the junk survives', () => {
    const rng = seededRng(23);
    const frames = deviceStream(rng, 50);
    const stream = Buffer.concat(frames.flatMap((f) => [Buffer.from(randomBytes(rng, 50)), Buffer.alloc(1), f]));
    const d = new FrameDecoder();
    expect(d.push(stream).map((f) => f.seq)).toEqual(frames.map((_, k) => k));
    expect(d.counters.seqGaps).toBe(0);
  });

  it('single flipped bits: the CRC rejects, counters count, every untouched frame comes through', () => {
    const rng = seededRng(24);
    const frames = deviceStream(rng, 40);
    const clean = Buffer.concat(frames);
    let crcSeen = 0;
    for (let trial = 0; trial < 400; trial++) {
      const stream = Buffer.from(clean);
      const flips = randomInt(rng, 1, 3);
      for (let k = 0; k < flips; k++) {
        const bit = randomInt(rng, 0, stream.length * 8 - 1);
        stream[bit >> 3]! ^= 1 << (bit & 7);
      }
      const want = expectedFrames(stream, frames);
      expect(want.seqs.length).toBeGreaterThanOrEqual(40 - 2 * flips);
      const d = new FrameDecoder();
      const got = feed(d, stream, [randomInt(rng, 0, stream.length)]);
      expect(got.map((f) => f.seq)).toEqual(want.seqs);
      expect(errorsOf(d)).toBe(want.badChunks);
      expect(d.counters.protocolErrors).toBe(0); // a flipped bit never slips past the CRC
      crcSeen += d.counters.crcErrors;
    }
    expect(crcSeen).toBeGreaterThan(300);
  });

  it('drops an endless zero-free run without holding it, and recovers at the next delimiter', () => {
    const d = new FrameDecoder();
    const noise = Buffer.alloc(64 * 1024, 0x55);
    for (let k = 0; k < 160; k++) expect(d.push(noise)).toEqual([]); // 10 MiB
    expect(d.counters.oversize).toBe(1);
    const frame = deviceStream(seededRng(25), 1)[0]!;
    const got = d.push(Buffer.concat([Buffer.alloc(1), frame]));
    expect(got.map((f) => f.seq)).toEqual([0]);
    // The same through pushChunk: one oversize chunk, then a good one.
    const c = new FrameDecoder();
    expect(c.pushChunk(Buffer.alloc(5000, 1))).toEqual([]);
    expect(c.pushChunk(frame.subarray(0, -1)).length).toBe(1);
    expect(c.counters.oversize).toBe(1);
  });

  it('never throws on thousands of random byte strings, and reports each failure', () => {
    const rng = seededRng(26);
    const d = new FrameDecoder({ onError: (e) => expect(e.detail.length).toBeGreaterThan(0) });
    for (let k = 0; k < 5000; k++) {
      const junk = randomBytes(rng, randomInt(rng, 0, 100));
      if (k % 2) d.push(junk);
      else d.pushChunk(junk);
    }
    expect(d.counters.frames).toBe(0);
    expect(errorsOf(d)).toBeGreaterThan(1000);
  });

  it('restart() forgives one torn first chunk, and only a torn one', () => {
    const frames = [0, 1, 2].map((k) => encodeFrame('status', k, makeFrame('status', k, 'random', seededRng(k)).fields));
    const d = new FrameDecoder();
    d.restart();
    expect(d.push(Buffer.concat([frames[0]!.subarray(9), frames[1]!])).map((f) => f.seq)).toEqual([1]);
    expect(d.counters).toMatchObject({ tornAtStart: 1, crcErrors: 0, framingErrors: 0 });
    // A whole first frame after restart() is delivered, and the benefit of the doubt is used up.
    d.restart();
    expect(d.push(Buffer.concat([Buffer.from([0, 0]), frames[2]!])).map((f) => f.seq)).toEqual([2]);
    expect(d.push(frames[0]!.subarray(9)).length).toBe(0);
    expect(d.counters.tornAtStart).toBe(1);
    expect(d.counters.crcErrors + d.counters.framingErrors).toBe(1);
  });

  it('discardPartial forgets a torn frame from a closed connection', () => {
    const frame = deviceStream(seededRng(27), 2);
    const d = new FrameDecoder();
    d.push(frame[0]!.subarray(0, 10));
    d.discardPartial();
    expect(d.push(frame[1]!).map((f) => f.seq)).toEqual([1]);
    expect(errorsOf(d)).toBe(0);
  });
});

describe('FrameDecoder sequence and reset tracking', () => {
  const ack = (seq: number) => encodeFrame('ack', seq, { command_seq: 0, command_type: 0x81, status: 0, value: 0 });
  const status = (seq: number, boot_id: number) =>
    encodeFrame('status', seq, {
      boot_id, uptime_ms: 0, frames_dropped: 0, fifo_overflows: 0, samples_dropped: 0, adc_errors: 0, watchdog_resets: 0, config_seq: 0,
        link_stalls: 0, uart_rx_overruns: 0, waveform_drops: 0,
    });

  it('sums missed sequence numbers, across the 2^32 wrap', () => {
    const gaps: number[] = [];
    const d = new FrameDecoder({ onGap: (g) => gaps.push(g.missed) });
    d.push(Buffer.concat([0xfffffffd, 0xfffffffe, 0xffffffff, 0, 1].map(ack)));
    expect(d.counters.seqGaps).toBe(0);
    d.push(Buffer.concat([4, 5, 100].map(ack)));
    expect(gaps).toEqual([2, 94]);
    expect(d.counters.seqGaps).toBe(96);
    d.push(Buffer.concat([0xfffffffe, 3].map(ack)));
    expect(d.counters.seqRestarts).toBe(1); // backwards: not a gap of four billion
    expect(d.counters.seqGaps).toBe(96 + 4);
  });

  it('counts a boot_id change as a reset and does not call the restarted seq a gap', () => {
    const resets: [number, number][] = [];
    const d = new FrameDecoder({ onReset: (r) => resets.push([r.previousBootId, r.bootId]) });
    d.push(Buffer.concat([status(500, 7), ack(501), status(0, 8), ack(1), status(2, 8)]));
    expect(d.counters).toMatchObject({ frames: 5, resets: 1, seqGaps: 0, seqRestarts: 0 });
    expect(resets).toEqual([[7, 8]]);
    expect(d.bootId).toBe(8);
  });

  it('tracks host commands apart from device frames', () => {
    const d = new FrameDecoder();
    d.push(Buffer.concat([ack(10), encodeFrame('cmd_status', 0, {}), ack(11), encodeFrame('cmd_identify', 1, {})]));
    expect(d.counters.seqGaps).toBe(0);
    expect(d.counters.seqRestarts).toBe(0);
  });
});
