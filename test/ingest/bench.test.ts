import { describe, expect, it } from 'vitest';
import { measureIngestThroughput, USB_FS_BULK_BYTES_PER_S } from '../../server/ingest/bench.ts';

describe('measureIngestThroughput', () => {
  it('runs the whole stream through and derives its figures consistently', () => {
    const r = measureIngestThroughput({ windows: 300, rounds: 2 });
    expect(r.rounds).toBe(2);
    expect(r.windows).toBe(300);
    expect(r.frames).toBe(2 * 300 + 1); // identify + (window, energy) pairs
    // A window frame is 90-odd bytes and an energy frame 40-odd once COBS-encoded.
    expect(r.mean_frame_bytes).toBeGreaterThan(40);
    expect(r.mean_frame_bytes).toBeLessThan(110);
    expect(r.usb_fs_frame_limit_per_s).toBeCloseTo(USB_FS_BULK_BYTES_PER_S / r.mean_frame_bytes, 6);
    expect(r.vs_wire).toBeCloseTo(r.frames_per_s / r.usb_fs_frame_limit_per_s, 9);
    expect(r.vs_bare).toBeCloseTo(r.windows_per_s / r.bare_rows_per_s, 9);
    expect(r.vs_bare_multirow).toBeCloseTo(r.windows_per_s / r.bare_multirow_rows_per_s, 9);
    expect(r.bare_multirow_rows_per_insert).toBeGreaterThan(1);
    expect(r.frames_per_s).toBeGreaterThan(0);
    expect(r.bare_multirow_rows_per_s).toBeGreaterThan(0);
    expect(() => measureIngestThroughput({ windows: 5 })).toThrow(/windows must be/);
    expect(() => measureIngestThroughput({ windows: 300, rounds: 0 })).toThrow(/rounds must be/);
  });
});
