import { describe, expect, it } from 'vitest';
import { WINDOW_WIRE_BYTES, benchDecoder } from '../../server/protocol/bench.ts';

describe('benchDecoder', () => {
  it('decodes every frame it encodes and reports per-frame wire size (rates are measured, not asserted)', () => {
    const r = benchDecoder({ frames: 500 });
    expect(r.frames).toBe(500);
    expect(r.wireBytesPerFrame).toBeLessThanOrEqual(WINDOW_WIRE_BYTES);
    expect(r.wireBytesPerFrame).toBeGreaterThan(90);
    for (const rate of [r.pushFramesPerSecond, r.pushChunkFramesPerSecond, r.encodeFramesPerSecond]) {
      expect(Number.isFinite(rate) && rate > 0).toBe(true);
    }
  });
});
