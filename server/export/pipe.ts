// Sending an export's bytes to a stream (an HTTP response, a file, stdout) through a fixed set of buffers.
//
// The export formats into its own buffer and hands out views of it, each valid until the next is pulled
// (exportCsvViews). Here each piece is copied into one of PIPE_SLOTS slot buffers; a full slot is written to the
// stream and comes back to the free list when the stream's write callback fires, i.e. once the bytes have left
// for the kernel. The free list is the back-pressure: the export is pulled only when a slot is free, so at most
// PIPE_SLOTS × SLOT_BYTES wait in the stream however slow the reader. Nothing is allocated per chunk: a fresh Buffer
// per chunk (or a string, converted again by the socket) is garbage outside the JS heap, freed only when the GC
// comes round, and over a year-long export that kept the server's RSS ~40 MB above what the export needs.

import type { Writable } from 'node:stream';

/** A slot is sent once it holds this much: large enough that the per-write cost is small, several fit in a socket buffer. */
export const CHUNK_BYTES = 64 * 1024;
export const PIPE_SLOTS = 8;
/**
 * Slots sent between two turns of the event loop. A fast reader takes each write at once and its callback comes
 * as a microtask, so without these turns a long export would never let the loop poll: ingest, WebSocket clients
 * and timers would wait for the whole export. 4 slots are ~1800 rows of a 1 s export, ~1.5 ms of formatting.
 */
export const CHUNKS_PER_TURN = 4;
/** A piece from the export (about CHUNK_BYTES plus the row that crossed it) always fits a slot with what is already in it. */
const SLOT_BYTES = 2 * CHUNK_BYTES + 8192;

/** The stream went away (closed or destroyed) before the export was complete. */
export class StreamClosedError extends Error {
  override readonly name = 'StreamClosedError';
  readonly code: string | undefined;
  constructor(cause?: Error) {
    super(cause ? `the output stream failed: ${cause.message}` : 'the output stream closed before the export was complete', { cause });
    this.code = (cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

/**
 * Writes every piece of `pieces` to `out` and resolves with the byte count once the last write has been
 * flushed; does not end `out`. A piece (a Uint8Array) may be reused by its producer once the next is pulled.
 * Rejects (with StreamClosedError, whose `code` is the stream error's, e.g. EPIPE) when `out` fails or closes
 * first, and then returns the iterator, so the producer releases what it holds (a SQLite statement) at once;
 * an error of the producer rejects with that error after the bytes before it were written.
 */
export async function pipeChunks(pieces: Iterable<Uint8Array>, out: Writable): Promise<number> {
  const free: Uint8Array[] = Array.from({ length: PIPE_SLOTS }, () => new Uint8Array(SLOT_BYTES));
  let failure: StreamClosedError | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onError = (err: Error): void => {
    failure ??= new StreamClosedError(err);
    notify();
  };
  const onClose = (): void => {
    failure ??= new StreamClosedError((out as { errored?: Error | null }).errored ?? undefined);
    notify();
  };
  out.on('error', onError);
  out.on('close', onClose);
  let inFlight = 0;
  let sentThisTurn = 0;
  let bytes = 0;
  let slot: Uint8Array | undefined;
  let used = 0;
  const send = (): void => {
    const s = slot!;
    const n = used;
    slot = undefined;
    used = 0;
    inFlight++;
    bytes += n;
    out.write(s.subarray(0, n), (err) => {
      inFlight--;
      if (err) failure ??= new StreamClosedError(err);
      // A slot written to a failed stream may still be referenced by it: it is not reused.
      else if (s.length === SLOT_BYTES) free.push(s);
      notify();
    });
  };
  const it = pieces[Symbol.iterator]();
  let done = false;
  try {
    for (;;) {
      if (failure) throw failure;
      if (slot === undefined) {
        while (free.length === 0 && !failure) await new Promise<void>((resolve) => (wake = resolve));
        if (failure) throw failure;
        slot = free.pop()!;
      }
      const r = it.next();
      if (r.done) {
        done = true;
        break;
      }
      const piece = r.value;
      if (used + piece.length > slot.length) {
        if (used > 0) {
          // The slot cannot take it: send what is there and copy the piece into the next free slot.
          send();
          while (free.length === 0 && !failure) await new Promise<void>((resolve) => (wake = resolve));
          if (failure) throw failure;
          slot = free.pop()!;
        }
        if (piece.length > slot.length) {
          // Larger than any slot (not made by the export's own loop): sent as a copy of its own, not kept.
          free.push(slot);
          slot = new Uint8Array(piece.length);
        }
      }
      slot.set(piece, used);
      used += piece.length;
      if (used >= CHUNK_BYTES) {
        send();
        if (++sentThisTurn >= CHUNKS_PER_TURN) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          sentThisTurn = 0;
        }
      }
    }
    if (slot !== undefined && used > 0) send();
    while (inFlight > 0 && !failure) await new Promise<void>((resolve) => (wake = resolve));
    if (failure) throw failure;
    return bytes;
  } finally {
    out.off('error', onError);
    out.off('close', onClose);
    if (!done) it.return?.();
  }
}
