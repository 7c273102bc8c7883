// @serialport/parser-delimiter keeps everything since the last delimiter in memory, so a line that
// never sends 0x00 (wrong baud rate, a board printing text) would grow its buffer without end.
// This subclass caps what it keeps between writes: an unfinished run longer than maxChunkBytes is
// dropped up to the next delimiter and reported once. (A long run that starts and ends inside one
// write, at most one port read, is passed on whole; FrameDecoder rejects it as oversize.)
//
// Exports (stable): BoundedDelimiterParser, BoundedDelimiterOptions.

import type { TransformCallback } from 'node:stream';
import { DelimiterParser } from '@serialport/parser-delimiter';

export interface BoundedDelimiterOptions {
  delimiter: number[] | Buffer;
  maxChunkBytes: number;
  onOversize: (droppedBytes: number) => void;
}

export class BoundedDelimiterParser extends DelimiterParser {
  private readonly maxChunkBytes: number;
  private readonly onOversize: (droppedBytes: number) => void;
  /** Set while the rest of an oversize run is still to come: its tail is dropped, not emitted. */
  private discarding = false;

  constructor(options: BoundedDelimiterOptions) {
    super({ delimiter: options.delimiter, includeDelimiter: false });
    this.maxChunkBytes = options.maxChunkBytes;
    this.onOversize = options.onOversize;
  }

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    // Check before handing back control: the callback may run the next _transform synchronously.
    super._transform(chunk, encoding, (error?: Error | null) => {
      if (this.buffer.length > this.maxChunkBytes) {
        if (!this.discarding) this.onOversize(this.buffer.length);
        this.buffer = Buffer.alloc(0);
        this.discarding = true;
      }
      callback(error);
    });
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (this.discarding && chunk !== null) {
      this.discarding = false;
      return true;
    }
    return super.push(chunk, encoding);
  }
}
