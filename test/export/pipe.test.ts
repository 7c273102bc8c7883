// pipeChunks (server/export/pipe.ts): every byte in order whatever the piece sizes, pieces that are views of
// one reused buffer (as the export's are), back-pressure bounded by its slots, and clean failure: a stream error
// or close rejects with the stream's code and releases the producer; a producer error rejects with that error.

import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES, CHUNKS_PER_TURN, PIPE_SLOTS, pipeChunks, StreamClosedError } from '../../server/export/pipe.ts';
import { rng } from '../store/helpers.ts';

/** A writable that keeps what it gets and calls back after `delayMs` (0: at once). */
function sink(delayMs = 0) {
  const parts: Buffer[] = [];
  let writes = 0;
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes++;
      parts.push(Buffer.from(chunk)); // a copy: the pipe reuses its slots
      if (delayMs > 0) setTimeout(cb, delayMs);
      else cb();
    },
  });
  return { out, bytes: () => Buffer.concat(parts), writes: () => writes };
}

/** Pieces as the export hands them out: views of one buffer, overwritten as soon as the next is pulled. */
function* reusedViews(data: Uint8Array, sizes: number[]): Generator<Uint8Array> {
  const scratch = new Uint8Array(Math.max(...sizes));
  let at = 0;
  for (const n of sizes) {
    const m = Math.min(n, data.length - at);
    scratch.set(data.subarray(at, at + m));
    yield scratch.subarray(0, m);
    scratch.fill(0x21); // what a producer does next to its buffer
    at += m;
    if (at >= data.length) return;
  }
}

function randomBytes(n: number, seed: number): Uint8Array {
  const next = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
}

describe('pipeChunks', () => {
  it('writes every byte in order, for pieces from 1 byte to several slots long, reused by their producer', async () => {
    const next = rng(7);
    const sizes = Array.from({ length: 400 }, (_, k) => (k % 50 === 0 ? 300_000 : k % 7 === 0 ? 70_000 : 1 + Math.floor(next() * 5000)));
    const total = sizes.reduce((a, b) => a + b, 0);
    const data = randomBytes(total, 11);
    for (const delayMs of [0, 1]) {
      const s = sink(delayMs);
      const n = await pipeChunks(reusedViews(data, sizes), s.out);
      expect(n).toBe(total);
      expect(Buffer.compare(s.bytes(), Buffer.from(data))).toBe(0);
      // Small pieces are gathered into chunks: far fewer writes than pieces.
      expect(s.writes()).toBeLessThan(total / CHUNK_BYTES + 20);
    }
  });

  it('lets the event loop turn while it sends to a reader that takes everything at once', async () => {
    let written = 0;
    const eager = new Writable({
      write(_c, _e, cb) {
        written++;
        cb(); // at once: the pipe never has to wait for a slot
      },
    });
    // Long enough to be cut short; finite, so a pipe that never lets the loop turn fails here instead of hanging.
    function* long(): Generator<Uint8Array> {
      const piece = new Uint8Array(CHUNK_BYTES);
      for (let k = 0; k < 200; k++) yield piece;
    }
    let writtenWhenTimerRan = -1;
    // An immediate runs at the loop's next check phase: only once the pipe lets the loop turn.
    const timer = new Promise<void>((resolve) =>
      setImmediate(() => {
        writtenWhenTimerRan = written;
        eager.destroy(); // ends the export
        resolve();
      }),
    );
    const done = pipeChunks(long(), eager);
    await timer;
    await expect(done).rejects.toBeInstanceOf(StreamClosedError);
    // It runs within one turn's worth of chunks, not after the export.
    expect(writtenWhenTimerRan).toBeGreaterThanOrEqual(0);
    expect(writtenWhenTimerRan).toBeLessThanOrEqual(CHUNKS_PER_TURN);
  });

  it('writes nothing for nothing, and resolves', async () => {
    const s = sink();
    expect(await pipeChunks([], s.out)).toBe(0);
    expect(s.writes()).toBe(0);
  });

  it('pulls no further than its slots while the stream does not call back', async () => {
    let pulled = 0;
    const stuck = new Writable({ highWaterMark: 1, write() {} }); // never calls back
    function* endless(): Generator<Uint8Array> {
      const piece = new Uint8Array(CHUNK_BYTES);
      for (;;) {
        pulled++;
        yield piece;
      }
    }
    const done = pipeChunks(endless(), stuck);
    await new Promise((r) => setTimeout(r, 50));
    expect(pulled).toBe(PIPE_SLOTS); // one slot per piece; the next is pulled only once a slot is free
    stuck.destroy();
    await expect(done).rejects.toBeInstanceOf(StreamClosedError);
  });

  it('rejects with the stream error (its code kept) and releases the producer', async () => {
    let released = false;
    let pulled = 0;
    function* producer(): Generator<Uint8Array> {
      try {
        for (;;) {
          pulled++;
          yield new Uint8Array(CHUNK_BYTES);
        }
      } finally {
        released = true;
      }
    }
    let writes = 0;
    const out = new Writable({
      write(_c, _e, cb) {
        writes++;
        if (writes === 3) cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
        else setTimeout(cb, 1);
      },
    });
    out.on('error', () => undefined);
    const err = await pipeChunks(producer(), out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamClosedError);
    expect((err as StreamClosedError).code).toBe('EPIPE');
    expect((err as Error).message).toMatch(/EPIPE/);
    expect(released).toBe(true);
    expect(pulled).toBeLessThan(3 + 2 * PIPE_SLOTS);
  });

  it('rejects when the stream closes before the end (a client that went away)', async () => {
    const out = new PassThrough({ highWaterMark: 1 }); // nobody reads: its buffer fills
    function* endless(): Generator<Uint8Array> {
      for (;;) yield new Uint8Array(1000);
    }
    const done = pipeChunks(endless(), out);
    setTimeout(() => out.destroy(), 20);
    await expect(done).rejects.toThrow(/closed before the export was complete/);
  });

  it('rejects with the producer’s error once the bytes before it are on their way', async () => {
    const s = sink(1);
    function* failing(): Generator<Uint8Array> {
      yield Buffer.from('timestamp\n');
      throw new Error('corrupt pack');
    }
    await expect(pipeChunks(failing(), s.out)).rejects.toThrow('corrupt pack');
  });
});
