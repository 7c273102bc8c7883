// Replay: a recorded CSV of signed ADC codes through the exact model, one JSON line per window.
// Used by `crabwatt replay --input FILE.csv --rate HZ --v-scale V_PER_CODE --i-scale A_PER_CODE
// [--mode cycles:K|fixed:N] [--pq …]`. Streams: memory does not grow with the file. With `pq`, the
// power-quality lines of server/pq/replay.ts are interleaved as they complete.

import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { WINDOW_MODE } from '../protocol/definition.ts';
import { windowFlagNames } from '../protocol/window-flags.ts';
import { derive, validateScale } from './derive.ts';
import { CODE_MID, DspCore, MAX_CYCLES, MAX_WINDOW_SAMPLES, RESET_CONFIG, type DspConfig, type WindowRecord } from './model.ts';
import { iecCycles, PqReplay, type PqEventLine, type PqLine, type PqReplayOptions } from '../pq/replay.ts';

export interface ReplayOptions {
  /** CSV text: a header naming the columns `v` and `i`, then one sample pair per line */
  input: Readable;
  /** sample rate of the recording, Hz */
  rate: number;
  /** volts per ADC code */
  vScale: number;
  /** amperes per ADC code */
  iScale: number;
  /** `cycles:K` (default `cycles:10`) or `fixed:N` */
  mode?: string;
  /** zero-crossing hysteresis in codes (default: the gateware's reset value, 64) */
  hysteresis?: number;
  /** also run the power-quality analysis (needs whole-cycle windows; default mode cycles:10 / 12 for 60 Hz) */
  pq?: PqReplayOptions;
}

export type ReplayLine = ReplayWindow | PqLine | PqEventLine;

/** One output line. */
export interface ReplayWindow {
  vrms: number;
  irms: number;
  p: number;
  s: number;
  pf: number | null;
  n: number;
  freq_hz: number | null;
  energy_wh: number;
  samples: number;
  /** index of the first sample after the window (0 = first data line) */
  end_index: number;
  /** names of the window flags; `END` marks the last window, cut short by the end of the input */
  flags: string[];
}

export class ReplayInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayInputError';
  }
}

/** Lowest signed code the 14-bit ADC produces (and +8191 the highest). */
const CODE_LO = -CODE_MID;
const CODE_HI = CODE_MID - 1;
const BLOCK = 1 << 16;
const INTEGER = /^[+-]?\d+$/;

/**
 * The window configuration for a mode string. In `cycles:K` mode the timeout is the time of K cycles
 * at 10 Hz (capped at 2^24 samples), so mains-frequency windows never time out.
 */
export function parseMode(mode: string, rate: number, hysteresis = RESET_CONFIG.zc_hysteresis): DspConfig {
  const m = /^(cycles|fixed):(\d+)$/.exec(mode.trim());
  const count = m ? Number(m[2]) : NaN;
  if (m?.[1] === 'cycles' && count >= 1 && count <= MAX_CYCLES) {
    const maxSamples = Math.min(MAX_WINDOW_SAMPLES, Math.max(1, Math.ceil((rate * count) / 10)));
    return { ...RESET_CONFIG, mode: WINDOW_MODE.CYCLES, cycles: count, max_samples: maxSamples, zc_hysteresis: hysteresis };
  }
  if (m?.[1] === 'fixed' && count >= 1 && count <= MAX_WINDOW_SAMPLES) {
    return { ...RESET_CONFIG, mode: WINDOW_MODE.FIXED, fixed_samples: count, zc_hysteresis: hysteresis };
  }
  throw new ReplayInputError(
    `mode "${mode}" is not cycles:K (K = 1 … ${MAX_CYCLES}) or fixed:N (N = 1 … ${MAX_WINDOW_SAMPLES})`,
  );
}

/** Split a CSV line into trimmed cells (the format has no quoting: every cell is an integer or a name). */
const cells = (line: string): string[] => line.split(',').map((c) => c.trim());

/** Yields one ReplayWindow per closed window, the last one (flag `END`) flushed at the end of input. */
export async function* replayWindows(opts: Omit<ReplayOptions, 'pq'>): AsyncGenerator<ReplayWindow> {
  for await (const line of replayLines(opts)) if (!('type' in line)) yield line;
}

/** replayWindows, and with `opts.pq` the power-quality lines as they complete. */
export async function* replayLines(opts: ReplayOptions): AsyncGenerator<ReplayLine> {
  const scale = { kv: opts.vScale, ki: opts.iScale, fs: opts.rate };
  try {
    validateScale(scale);
  } catch {
    throw new ReplayInputError(
      `rate, v-scale and i-scale must be finite numbers > 0 (got ${opts.rate}, ${opts.vScale}, ${opts.iScale})`,
    );
  }
  const hysteresis = opts.hysteresis ?? RESET_CONFIG.zc_hysteresis;
  if (!Number.isInteger(hysteresis) || hysteresis < 0 || hysteresis > 32767) {
    throw new ReplayInputError(`hysteresis must be an integer in 0 … 32767, got ${hysteresis}`);
  }
  const config = parseMode(opts.mode ?? (opts.pq ? `cycles:${iecCycles(opts.pq.nominalHz)}` : 'cycles:10'), opts.rate, hysteresis);
  if (opts.pq && config.mode !== WINDOW_MODE.CYCLES) {
    throw new ReplayInputError('--pq analyses whole-cycle windows: use --mode cycles:K (or leave --mode out)');
  }
  let pq: PqReplay | null = null;
  try {
    pq = opts.pq ? new PqReplay(opts.pq, opts.rate, opts.vScale, opts.iScale, config.cycles) : null;
  } catch (err) {
    throw new ReplayInputError((err as Error).message);
  }
  const core = new DspCore(config);
  /** The block's windows, and with pq the analysis lines they and the block's samples complete. */
  function* block(count: number, last: boolean): Generator<ReplayLine> {
    pq?.samples(cv, ci, count);
    for (const w of core.process(cv, ci, count)) {
      pq?.window(w);
      yield toLine(w, last);
    }
    if (pq) yield* pq.lines(last);
  }
  const cv = new Uint16Array(BLOCK);
  const ci = new Uint16Array(BLOCK);
  let fill = 0;
  let vCol = -1;
  let iCol = -1;
  let lineNo = 0;

  const toLine = (w: WindowRecord, last: boolean): ReplayWindow => {
    const d = derive(w, scale);
    const flags = windowFlagNames(w.flags).map((name) => (last && name === 'CONFIG' ? 'END' : name));
    return {
      vrms: d.vrms, irms: d.irms, p: d.p, s: d.s, pf: d.pf, n: d.n, freq_hz: d.freq_hz,
      energy_wh: d.energy_wh, samples: w.samples, end_index: Number(w.end_index), flags,
    };
  };

  const lines = createInterface({ input: opts.input, crlfDelay: Infinity });
  for await (const raw of lines) {
    lineNo++;
    const line = raw.trim();
    if (line === '') continue;
    const row = cells(line);
    if (vCol < 0) {
      // Spreadsheet exports often start with a byte-order mark and quote the names.
      const names = row.map((c) => c.replace(/^\uFEFF/, '').replace(/^"(.*)"$/, '$1').trim().toLowerCase());
      vCol = names.indexOf('v');
      iCol = names.indexOf('i');
      if (row.length !== 2 || vCol < 0 || iCol < 0) {
        throw new ReplayInputError(`line ${lineNo}: expected the header "v,i", got "${line}"`);
      }
      continue;
    }
    if (row.length !== 2) {
      throw new ReplayInputError(`line ${lineNo}: expected 2 columns (v,i), got ${row.length}`);
    }
    const code = (col: number, name: string): number => {
      const text = row[col]!;
      if (!INTEGER.test(text)) {
        throw new ReplayInputError(`line ${lineNo}, column ${col + 1} (${name}): "${text}" is not an integer`);
      }
      const x = Number(text);
      if (x < CODE_LO || x > CODE_HI) {
        throw new ReplayInputError(
          `line ${lineNo}, column ${col + 1} (${name}): ${text} is outside the 14-bit code range ${CODE_LO} … ${CODE_HI}`,
        );
      }
      return x + CODE_MID;
    };
    cv[fill] = code(vCol, 'v');
    ci[fill] = code(iCol, 'i');
    if (++fill === BLOCK) {
      yield* block(BLOCK, false);
      fill = 0;
    }
  }
  if (vCol < 0) throw new ReplayInputError('the input is empty: expected the header "v,i"');
  yield* block(fill, false);
  // Close the window still open at the end of the input so its samples are reported too.
  core.commit(config);
  yield* block(0, true);
}

/** Summary of a replay run. */
export interface ReplaySummary {
  windows: number;
  samples: number;
}

/**
 * Replay into a writer of text lines (a JSON object per line). The writer may return a promise to apply
 * back-pressure; `streamWriter` adapts a Writable such as process.stdout.
 */
export async function replay(
  opts: ReplayOptions & { write: (line: string) => unknown },
): Promise<ReplaySummary> {
  const summary: ReplaySummary = { windows: 0, samples: 0 };
  for await (const line of replayLines(opts)) {
    if (!('type' in line)) {
      summary.windows++;
      summary.samples += line.samples;
    }
    await opts.write(JSON.stringify(line) + '\n');
  }
  return summary;
}

/** A write function for replay() that waits for 'drain' when the stream's buffer is full. */
export function streamWriter(out: Writable): (line: string) => Promise<void> | void {
  return (line) => {
    if (out.write(line)) return;
    return new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        out.off('error', onError);
        resolve();
      };
      const onError = (err: Error): void => {
        out.off('drain', onDrain);
        reject(err);
      };
      out.once('drain', onDrain);
      out.once('error', onError);
    });
  };
}
