import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { replay, replayWindows, streamWriter, type ReplayOptions, type ReplayWindow } from '../../server/dsp/replay.ts';

const RATE = 10_000;
const KV = 400 / 8192;
const KI = 32 / 8192;

function sineCsv(samples: number, opts: { header?: string; eol?: string; freq?: number } = {}): string {
  const rows = [opts.header ?? 'v,i'];
  const w = (2 * Math.PI * (opts.freq ?? 50)) / RATE;
  for (let n = 0; n < samples; n++) {
    const v = Math.round((230 * Math.SQRT2 * Math.sin(w * n)) / KV);
    const i = Math.round((5 * Math.SQRT2 * Math.sin(w * n - Math.PI / 3)) / KI);
    rows.push(`${v},${i}`);
  }
  return rows.join(opts.eol ?? '\n') + '\n';
}

const opts = (csv: string, over: Partial<ReplayOptions> = {}): ReplayOptions => ({
  input: Readable.from([csv]),
  rate: RATE,
  vScale: KV,
  iScale: KI,
  ...over,
});

async function collect(o: ReplayOptions): Promise<ReplayWindow[]> {
  const out: ReplayWindow[] = [];
  for await (const w of replayWindows(o)) out.push(w);
  return out;
}

describe('replay', () => {
  it('turns a CSV of signed codes into one window per K cycles with physical quantities', async () => {
    // 50 Hz at 10 kHz: 200 samples per cycle; 2.3 s = 115 cycles.
    const windows = await collect(opts(sineCsv(23_000), { mode: 'cycles:10' }));
    const whole = windows.filter((w) => w.flags.length === 0);
    expect(whole.length).toBe(11);
    for (const w of whole) {
      expect(w.samples).toBe(2000);
      expect(w.vrms).toBeCloseTo(230, 1);
      expect(w.irms).toBeCloseTo(5, 2);
      expect(w.p).toBeCloseTo(230 * 5 * 0.5, 0);
      expect(w.pf).toBeCloseTo(0.5, 3);
      expect(w.n).toBeCloseTo(230 * 5 * Math.sin(Math.PI / 3), 0);
      expect(w.freq_hz).toBeCloseTo(50, 3);
      expect(w.energy_wh).toBeCloseTo((575 * 0.2) / 3600, 6);
    }
    expect(windows[0]!.flags).toEqual(['PARTIAL']);
    // The first crossing is at sample 200 (the sine starts at 0, not armed); 11 whole windows follow and
    // the rest is flushed at the end of the input.
    expect(windows[0]!.samples).toBe(200);
    expect(windows.at(-1)!.flags).toEqual(['END']);
    expect(windows.at(-1)!.samples).toBe(800);
    expect(windows.reduce((a, w) => a + w.samples, 0)).toBe(23_000);
    expect(windows.at(-1)!.end_index).toBe(23_000);
  });

  it('fixed:N windows, CRLF line endings, BOM and quoted names, the header in either order, blank lines ignored', async () => {
    const csv = sineCsv(1000, { eol: '\r\n' }).replace(/^v,i/, '\uFEFF"V" , I');
    const windows = await collect(opts(csv + '\r\n\r\n', { mode: 'fixed:300' }));
    expect(windows.map((w) => w.samples)).toEqual([300, 300, 300, 100]);
    expect(windows.map((w) => w.flags)).toEqual([[], [], [], ['END']]);
    const swapped = 'i,v\n' + sineCsv(600).split('\n').slice(1).map((l) => l.split(',').reverse().join(',')).join('\n');
    const a = await collect(opts(swapped, { mode: 'fixed:600' }));
    const b = await collect(opts(sineCsv(600), { mode: 'fixed:600' }));
    expect(a).toEqual(b);
  });

  it('writes JSON lines through a back-pressured stream writer', async () => {
    const out = new PassThrough({ highWaterMark: 16 });
    const chunks: string[] = [];
    const reading = (async () => {
      for await (const c of out) chunks.push(String(c));
    })();
    const summary = await replay({ ...opts(sineCsv(6000)), mode: 'fixed:500', write: streamWriter(out) });
    out.end();
    await reading;
    const lines = chunks.join('').trim().split('\n');
    expect(summary).toEqual({ windows: 12, samples: 6000 });
    expect(lines.length).toBe(12);
    const first = JSON.parse(lines[0]!) as ReplayWindow;
    expect(Object.keys(first)).toEqual(['vrms', 'irms', 'p', 's', 'pf', 'n', 'freq_hz', 'energy_wh', 'samples', 'end_index', 'flags']);
  });

  it.each([
    ['1,2\n3,4\n', /line 1: expected the header "v,i"/],
    ['', /empty/],
    ['v,i\n1,2\n3,x\n', /line 3, column 2 \(i\): "x" is not an integer/],
    ['v,i\n1.5,2\n', /line 2, column 1 \(v\): "1.5" is not an integer/],
    ['v,i\n1,2,3\n', /line 2: expected 2 columns \(v,i\), got 3/],
    ['v,i\n1\n', /line 2: expected 2 columns/],
    ['v,i\n0,0\n8192,0\n', /line 3, column 1 \(v\): 8192 is outside the 14-bit code range -8192 … 8191/],
    ['v,i\n0,-8193\n', /line 2, column 2 \(i\): -8193 is outside/],
  ])('rejects bad CSV %j with an error naming the line and column', async (csv, message) => {
    await expect(collect(opts(csv))).rejects.toThrow(message);
  });

  it('rejects bad options with a clear error', async () => {
    await expect(collect(opts('v,i\n', { mode: 'cycles:0' }))).rejects.toThrow(/mode "cycles:0"/);
    await expect(collect(opts('v,i\n', { mode: 'blocks:3' }))).rejects.toThrow(/cycles:K/);
    await expect(collect(opts('v,i\n', { rate: 0 }))).rejects.toThrow(/rate/);
    await expect(collect(opts('v,i\n', { hysteresis: -1 }))).rejects.toThrow(/hysteresis/);
  });

  it('accepts the extreme codes and flags them as clipping', async () => {
    const windows = await collect(opts('v,i\n-8192,8191\n0,0\n', { mode: 'fixed:2' }));
    expect(windows).toHaveLength(1);
    expect(windows[0]!.flags).toEqual(['CLIP_V', 'CLIP_I']);
  });
});
