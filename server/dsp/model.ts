// The bit-exact reference model of docs/dsp.md, fast enough to run the simulated device.
//
// One implementation serves the simulator, the vectors and replay. The per-sample arithmetic runs on
// small integers held in doubles (V8 keeps them in int32 registers where they fit); the window sums are
// doubles while that is provably exact and are folded into BigInt before it could stop being so.
//
// Exactness argument (referenced from the code as "EXACT"):
//  - x0 ∈ [−8192, 8191]; the phase stage z = a·65536 + f·(b − a) with f ∈ [0, 65535] and
//    |b − a| ≤ 16383 lies between a·65536 and b·65536, so |z| < 2^29 + 2^16: int32, no rounding.
//  - zq ∈ [−32768, 32764]; x1 = zq − offset ∈ [−65535, 65532]. x1·gain needs 33 bits, so it is split
//    with gain = 256·gh + gl (gh, gl < 256): x1·gh and x1·gl + 8192 are below 2^24 in magnitude, and
//    (x1·gain + 8192) >> 14 = (x1·gh + ((x1·gl + 8192) >> 8)) >> 6, because floor(floor(a/256)/64) =
//    floor(a/16384) and 256·x1·gh is a multiple of 256. Everything stays int32.
//  - v, i ∈ [−131072, 131071] (quarter-LSB) after sat18, so v², i², |v·i| ≤ 2^34: no longer int32, but
//    exact as doubles (products of two 18-bit integers have at most 36 significant bits).
//  - A double holds every integer of magnitude ≤ 2^53 exactly. The window sums are accumulated in
//    doubles over at most FOLD_SAMPLES = 2^19 samples (process() splits its input into segments of at
//    most that length and folds after each), so each double partial sum, and every intermediate one,
//    stays ≤ 2^19·2^34 = 2^53. Folding moves the partial into a BigInt. So every sum is exact at any
//    window length (≤ 2^24).
//  - E (96-bit in the gateware) is a BigInt: the closed windows' Σ sum_vi plus the open window's sum.

import { FRAMES, WINDOW_FLAG, WINDOW_MODE, type ScalarType } from '../protocol/definition.ts';

/**
 * Largest number of samples accumulated in double partial sums before folding into BigInt (EXACT):
 * 2^53 (up to which every integer is exact in a double) / 2^34 (the largest |product|).
 */
export const FOLD_SAMPLES = 1 << 19;
/** Delay-line length of each channel (docs/dsp.md, phase alignment). */
export const DELAY_LINE_LENGTH = 1024;
export const CODE_MAX = 16383;
export const CODE_MID = 8192;
export const GAIN_ONE = 16384;
export const MAX_WINDOW_SAMPLES = 1 << 24;
export const MAX_CYCLES = 1000;
/** |phase| must stay below this (d ≤ 1022 so that x0[n−d−1] is still in the delay line). */
export const PHASE_LIMIT = 1023 * 65536;

type WindowFrame = Extract<(typeof FRAMES)[number], { name: 'window' }>;
type FieldValue<T extends ScalarType> = T extends 'u64' | 'i64' | 'i128' ? bigint : number;

/** One closed window: exactly the fields of the `window` frame (64-bit fields as bigint). */
export type WindowRecord = {
  -readonly [F in WindowFrame['fields'][number] as F['name']]: FieldValue<F['type']>;
};

/** Window rules and calibration, with the field names of cmd_configure and cmd_calibrate. */
export interface DspConfig {
  /** WINDOW_MODE.CYCLES or WINDOW_MODE.FIXED */
  mode: number;
  /** K, cycles per window in CYCLES mode (1 … 1000) */
  cycles: number;
  /** N, samples per window in FIXED mode (1 … 2^24) */
  fixed_samples: number;
  /** M, timeout of a CYCLES window, samples (1 … 2^24) */
  max_samples: number;
  /** zero-crossing arming threshold, ADC LSB (0 … 32767); compared with v in quarter-LSB as 4·h */
  zc_hysteresis: number;
  /** offsets in quarter-LSB of the centred code (signed 16) */
  v_offset: number;
  i_offset: number;
  /** gains Q2.14, 16384 = 1.0 (unsigned 16) */
  v_gain: number;
  i_gain: number;
  /** delay of current relative to voltage, 1/65536 sample; negative delays voltage (|phase| < 1023·65536) */
  phase: number;
}

/** The gateware's reset values (docs/dsp.md). */
export const RESET_CONFIG: Readonly<DspConfig> = Object.freeze({
  mode: WINDOW_MODE.CYCLES,
  cycles: 10,
  fixed_samples: 400_000,
  max_samples: 4_000_000,
  zc_hysteresis: 64,
  v_offset: 0,
  i_offset: 0,
  v_gain: GAIN_ONE,
  i_gain: GAIN_ONE,
  phase: 0,
});

/**
 * A code outside 0 … 16383. The samples before it were processed: the windows they closed (and E at
 * their ends) travel with the error so that nothing is lost.
 */
export class DspInputError extends RangeError {
  constructor(
    message: string,
    readonly windows: WindowRecord[],
    readonly energies: bigint[],
  ) {
    super(message);
    this.name = 'DspInputError';
  }
}

export class DspConfigError extends RangeError {
  constructor(readonly field: string, message: string) {
    super(`DSP configuration: ${field} ${message}`);
    this.name = 'DspConfigError';
  }
}

const CONFIG_RANGES: Record<keyof DspConfig, readonly [number, number]> = {
  mode: [WINDOW_MODE.CYCLES, WINDOW_MODE.FIXED],
  cycles: [1, MAX_CYCLES],
  fixed_samples: [1, MAX_WINDOW_SAMPLES],
  max_samples: [1, MAX_WINDOW_SAMPLES],
  zc_hysteresis: [0, 32767],
  v_offset: [-32768, 32767],
  i_offset: [-32768, 32767],
  v_gain: [0, 65535],
  i_gain: [0, 65535],
  phase: [-(PHASE_LIMIT - 1), PHASE_LIMIT - 1],
};

/** Throws DspConfigError naming the first field that is missing, not an integer or out of range. */
export function validateConfig(config: DspConfig): void {
  for (const key of Object.keys(CONFIG_RANGES) as (keyof DspConfig)[]) {
    const value: unknown = (config as unknown as Record<string, unknown>)[key];
    const [lo, hi] = CONFIG_RANGES[key];
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw new DspConfigError(key, `must be an integer, got ${String(value)}`);
    }
    if (value < lo || value > hi) throw new DspConfigError(key, `must be in ${lo} … ${hi}, got ${value}`);
  }
}

const { CLIP_V, CLIP_I, SAT_V, SAT_I, PARTIAL, TIMEOUT, CONFIG, ZC_OVERFLOW } = WINDOW_FLAG;
/** sat18: the range of a calibrated sample in quarter-LSB. */
const Y_MAX = 131071;
const Y_MIN = -131072;
const RING_MASK = DELAY_LINE_LENGTH - 1;
// Slots of DspCore.wide.
const W_N = 0;
const W_START = 1;
const W_SV = 2;
const W_SI = 3;
const W_SVV = 4;
const W_SII = 5;
const W_SVI = 6;
const W_COUNT = 7;
/** Per-code flags of a raw code (any Uint16 value): CLIP at the rails, BAD_CODE above 14 bits. */
const BAD_CODE = 1 << 15;
function codeFlags(clip: number): Uint16Array {
  const table = new Uint16Array(65536).fill(BAD_CODE, CODE_MAX + 1);
  table[0] = table[CODE_MAX] = clip;
  return table;
}
const CODE_FLAGS_V = codeFlags(CLIP_V);
const CODE_FLAGS_I = codeFlags(CLIP_I);

/** Where process() also writes each calibrated pair (q), at the position of its codes. */
export interface CalibratedSink {
  v: Int32Array;
  i: Int32Array;
}

/**
 * The DSP core: feed it blocks of raw 14-bit code pairs, get the windows that closed.
 * Sample indices are kept as doubles internally (exact up to 2^53 samples = 71 years at 4 Msps).
 */
export class DspCore {
  private cfg: DspConfig;
  private readonly pending: DspConfig[] = [];
  private seq = 0;
  /** Delay lines of raw x0 (independent of the configuration), written at ring position `ring`. */
  private readonly histV = new Int32Array(DELAY_LINE_LENGTH);
  private readonly histI = new Int32Array(DELAY_LINE_LENGTH);
  private ring = 0;
  /**
   * The values that outgrow int32 (sample indices, the double partial sums) live in a Float64Array:
   * as plain fields V8 would first store them as small integers and later change the field's
   * representation, which deoptimises run() at an unpredictable moment (measured: half the speed).
   */
  private readonly wide = new Float64Array(W_COUNT);
  private armed = false;
  private prevV = 0;
  private energyClosed = 0n;

  // The open window. Sums are split into an exact BigInt part and a double part (see EXACT).
  private cnt = 0;
  private synced = false;
  private flags = 0;
  private bigSv = 0n;
  private bigSi = 0n;
  private bigSvv = 0n;
  private bigSii = 0n;
  private bigSvi = 0n;
  // Extremes and prevV in quarter-LSB (as v); the zc_* fields already in whole LSB (as recorded).
  private minV = 0;
  private maxV = 0;
  private minI = 0;
  private maxI = 0;
  private zcCount = 0;
  private zcFirstOff = 0;
  private zcFirstPrev = 0;
  private zcFirstCur = 0;
  private zcLastOff = 0;
  private zcLastPrev = 0;
  private zcLastCur = 0;

  /** E after each record returned by the last process() call, same order (for `energy` frames). */
  lastEnergies: bigint[] = [];

  constructor(config: DspConfig = RESET_CONFIG) {
    validateConfig(config);
    this.cfg = { ...config };
  }

  /** The configuration in force (pending commits not yet applied). */
  get config(): Readonly<DspConfig> {
    return this.cfg;
  }

  /** config_seq in force for the next sample, counting commits not yet applied. */
  get configSeq(): number {
    return (this.seq + this.pending.length) & 0xffff;
  }

  /** Index of the next sample to be processed. */
  get sampleIndex(): bigint {
    return BigInt(this.wide[W_N]!);
  }

  /** E: Σ v·i over every sample processed since construction (the 96-bit accumulator). */
  get energy(): bigint {
    // With no open window the partial sums are stale leftovers of the last closed one.
    return this.cnt === 0 ? this.energyClosed : this.energyClosed + this.bigSvi + BigInt(this.wide[W_SVI]!);
  }

  /**
   * Commit a configuration at the next sample boundary b (the next sample given to process()).
   * Validates first (DspConfigError, nothing changes). Returns the config_seq it will carry.
   */
  commit(config: DspConfig): number {
    validateConfig(config);
    this.pending.push({ ...config });
    return this.configSeq;
  }

  /**
   * Run `count` sample pairs (default: the whole arrays, which must then be equally long) of raw codes
   * (0 … 16383) through the core. Returns the windows that closed, oldest first; `lastEnergies` holds
   * E at each one's end. A code out of range throws a DspInputError naming its position; the samples
   * before it are processed and their windows are in the error. With `calibrated`, the calibrated pair
   * (q) of codes k is also written to calibrated.v[k], calibrated.i[k] (for the decimated stream).
   */
  process(cv: Uint16Array, ci: Uint16Array, count?: number, calibrated?: CalibratedSink): WindowRecord[] {
    if (count === undefined) {
      if (cv.length !== ci.length) {
        throw new RangeError(`process: cv has ${cv.length} samples but ci has ${ci.length}; pass a count`);
      }
      count = cv.length;
    }
    if (!Number.isInteger(count) || count < 0 || count > cv.length || count > ci.length) {
      throw new RangeError(
        `process: count ${count} must be an integer in 0 … ${Math.min(cv.length, ci.length)} (the shorter array)`,
      );
    }
    const out: WindowRecord[] = [];
    this.lastEnergies = [];
    this.applyPending(out);
    for (let from = 0; from < count; from += FOLD_SAMPLES) {
      this.run(cv, ci, from, Math.min(count, from + FOLD_SAMPLES), out, calibrated);
    }
    return out;
  }

  private applyPending(out: WindowRecord[]): void {
    for (const next of this.pending) {
      if (this.cnt > 0) this.closeFromState(this.wide[W_N]!, CONFIG, out);
      this.cfg = next;
      this.seq = (this.seq + 1) & 0xffff;
      this.armed = false;
    }
    this.pending.length = 0;
  }

  private closeFromState(end: number, extraFlags: number, out: WindowRecord[]): void {
    const w = this.wide;
    this.emit(out, end, this.flags | extraFlags, this.cnt, this.synced, w[W_SV]!, w[W_SI]!, w[W_SVV]!, w[W_SII]!,
      w[W_SVI]!, this.minV, this.maxV, this.minI, this.maxI, this.zcCount, this.zcFirstOff, this.zcFirstPrev,
      this.zcFirstCur, this.zcLastOff, this.zcLastPrev, this.zcLastCur);
    this.cnt = 0;
  }

  /**
   * Build the record of the open window and add its Σ v·i to E. The window's state comes as
   * arguments because run() keeps it in locals (a closure over them would put them on the heap);
   * the BigInt parts are in `this`.
   */
  private emit(
    out: WindowRecord[], end: number, flags: number, samples: number, synced: boolean,
    sv: number, si: number, svv: number, sii: number, svi: number,
    minV: number, maxV: number, minI: number, maxI: number, zcCount: number,
    zcFirstOff: number, zcFirstPrev: number, zcFirstCur: number,
    zcLastOff: number, zcLastPrev: number, zcLastCur: number,
  ): void {
    if (this.cfg.mode === WINDOW_MODE.CYCLES && !synced) flags |= PARTIAL;
    const sumVi = this.bigSvi + BigInt(svi);
    this.energyClosed += sumVi;
    out.push({
      end_index: BigInt(end),
      samples,
      sum_v: this.bigSv + BigInt(sv),
      sum_i: this.bigSi + BigInt(si),
      sum_vv: this.bigSvv + BigInt(svv),
      sum_ii: this.bigSii + BigInt(sii),
      sum_vi: sumVi,
      // Extremes are tracked in quarter-LSB and recorded in whole LSB; floor is monotone, so
      // min(y) >> 2 = min(y >> 2).
      min_v: minV >> 2,
      max_v: maxV >> 2,
      min_i: minI >> 2,
      max_i: maxI >> 2,
      zc_count: zcCount,
      zc_first_offset: zcFirstOff,
      zc_first_prev: zcFirstPrev,
      zc_first_cur: zcFirstCur,
      zc_last_offset: zcLastOff,
      zc_last_prev: zcLastPrev,
      zc_last_cur: zcLastCur,
      flags,
      config_seq: this.seq,
    });
    this.lastEnergies.push(this.energyClosed);
    this.bigSv = this.bigSi = this.bigSvv = this.bigSii = this.bigSvi = 0n;
  }

  /**
   * The per-sample pipeline over cv/ci[from, to), to − from ≤ FOLD_SAMPLES. State lives in locals for
   * speed, is passed to emit() at a close and is written back to `this` at the end (then folded).
   */
  private run(
    cv: Uint16Array, ci: Uint16Array, from: number, to: number, out: WindowRecord[], calibrated?: CalibratedSink,
  ): void {
    const calV = calibrated?.v;
    const calI = calibrated?.i;
    const histV = this.histV;
    const histI = this.histI;
    const cfg = this.cfg;
    const cyclesMode = cfg.mode === WINDOW_MODE.CYCLES;
    const limit = cyclesMode ? cfg.max_samples : cfg.fixed_samples;
    const K = cfg.cycles;
    // v is in quarter-LSB, the register in ADC LSB.
    const negH = -4 * cfg.zc_hysteresis;
    const offV = cfg.v_offset;
    const offI = cfg.i_offset;
    const gainV = cfg.v_gain;
    const gainI = cfg.i_gain;
    // Gains split into bytes so the 33-bit product is formed exactly in int32 (EXACT).
    const gainVh = gainV >> 8;
    const gainVl = gainV & 255;
    const gainIh = gainI >> 8;
    const gainIl = gainI & 255;
    const identity = cfg.phase === 0 && offV === 0 && offI === 0 && gainV === GAIN_ONE && gainI === GAIN_ONE;
    // The late channel delays by (d, f); the other uses (0, 0).
    const absPhase = Math.abs(cfg.phase);
    const d = absPhase >>> 16;
    const f = absPhase & 0xffff;
    const dV = cfg.phase < 0 ? d : 0;
    const fV = cfg.phase < 0 ? f : 0;
    const dI = cfg.phase > 0 ? d : 0;
    const fI = cfg.phase > 0 ? f : 0;

    let ring = this.ring;
    let n = this.wide[W_N]!;
    let armed = this.armed;
    let prevV = this.prevV;
    let cnt = this.cnt;
    let winStart = this.wide[W_START]!;
    let synced = this.synced;
    let flags = this.flags;
    let sv = this.wide[W_SV]!;
    let si = this.wide[W_SI]!;
    let svv = this.wide[W_SVV]!;
    let sii = this.wide[W_SII]!;
    let svi = this.wide[W_SVI]!;
    let minV = this.minV;
    let maxV = this.maxV;
    let minI = this.minI;
    let maxI = this.maxI;
    let zcCount = this.zcCount;
    let zcFirstOff = this.zcFirstOff;
    let zcFirstPrev = this.zcFirstPrev;
    let zcFirstCur = this.zcFirstCur;
    let zcLastOff = this.zcLastOff;
    let zcLastPrev = this.zcLastPrev;
    let zcLastCur = this.zcLastCur;

    let badSample = -1;
    for (let k = from; k < to; k++) {
      const cvk = cv[k]!;
      const cik = ci[k]!;
      // Flags of this sample, OR-ed into whichever window ends up holding it; one lookup per channel
      // also catches codes above 14 bits.
      let sf = CODE_FLAGS_V[cvk]! | CODE_FLAGS_I[cik]!;
      if (sf >= BAD_CODE) {
        badSample = k;
        break;
      }

      const x0v = cvk - CODE_MID;
      const x0i = cik - CODE_MID;
      histV[ring] = x0v;
      histI[ring] = x0i;
      let v: number;
      let i: number;
      if (identity) {
        // The doc's arithmetic at (d, f) = (0, 0), offset 0, gain 16384: zq = 4·x0 and
        // (4·x0·16384 + 8192) >> 14 = 4·x0, never saturated. Skipping it is exact, not an approximation.
        v = 4 * x0v;
        i = 4 * x0i;
      } else {
        // Phase alignment, offset, gain (EXACT).
        const av = histV[(ring - dV) & RING_MASK]!;
        const zqV = (av * 65536 + fV * (histV[(ring - dV - 1) & RING_MASK]! - av) + 8192) >> 14;
        const x1V = zqV - offV;
        v = (x1V * gainVh + ((x1V * gainVl + 8192) >> 8)) >> 6;
        if (v > Y_MAX) {
          v = Y_MAX;
          sf |= SAT_V;
        } else if (v < Y_MIN) {
          v = Y_MIN;
          sf |= SAT_V;
        }
        const ai = histI[(ring - dI) & RING_MASK]!;
        const zqI = (ai * 65536 + fI * (histI[(ring - dI - 1) & RING_MASK]! - ai) + 8192) >> 14;
        const x1I = zqI - offI;
        i = (x1I * gainIh + ((x1I * gainIl + 8192) >> 8)) >> 6;
        if (i > Y_MAX) {
          i = Y_MAX;
          sf |= SAT_I;
        } else if (i < Y_MIN) {
          i = Y_MIN;
          sf |= SAT_I;
        }
      }
      ring = (ring + 1) & RING_MASK;
      if (calV !== undefined) {
        calV[k] = v;
        calI![k] = i;
      }

      // Zero-crossing detector: cross at v ≥ 0 only when armed; re-arm only below −4h.
      const zc = armed && v >= 0;
      if (zc) armed = false;
      else if (v < negH) armed = true;

      // CYCLES close rule: before this sample, on a crossing, once K cycles are in or if unsynchronised.
      if (zc && cyclesMode && cnt > 0 && (zcCount === K || !synced)) {
        this.emit(out, n, flags, cnt, synced, sv, si, svv, sii, svi, minV, maxV, minI, maxI, zcCount,
          zcFirstOff, zcFirstPrev, zcFirstCur, zcLastOff, zcLastPrev, zcLastCur);
        cnt = 0;
      }
      if (cnt === 0) {
        // Open a window at this sample. Its BigInt parts were cleared by emit().
        winStart = n;
        synced = zc;
        flags = 0;
        sv = si = svv = sii = svi = 0;
        minV = maxV = v;
        minI = maxI = i;
        zcCount = zcFirstOff = zcFirstPrev = zcFirstCur = zcLastOff = zcLastPrev = zcLastCur = 0;
      }
      flags |= sf;
      // Products up to 2^34: exact doubles, summed exactly while ≤ 2^53 (EXACT).
      sv += v;
      si += i;
      svv += v * v;
      sii += i * i;
      svi += v * i;
      if (v < minV) minV = v;
      if (v > maxV) maxV = v;
      if (i < minI) minI = i;
      if (i > maxI) maxI = i;
      if (zc) {
        const offset = n - winStart;
        // The record keeps whole LSB (y >> 2, floor): prev stays < 0 and cur ≥ 0.
        if (zcCount === 0) {
          zcFirstOff = offset;
          zcFirstPrev = prevV >> 2;
          zcFirstCur = v >> 2;
        }
        zcLastOff = offset;
        zcLastPrev = prevV >> 2;
        zcLastCur = v >> 2;
        if (zcCount === 0xffff) flags |= ZC_OVERFLOW;
        else zcCount++;
      }
      prevV = v;
      cnt++;
      n++;
      if (cnt === limit) {
        this.emit(out, n, cyclesMode ? flags | TIMEOUT : flags, cnt, synced, sv, si, svv, sii, svi,
          minV, maxV, minI, maxI, zcCount, zcFirstOff, zcFirstPrev, zcFirstCur, zcLastOff, zcLastPrev, zcLastCur);
        cnt = 0;
      }
    }
    this.ring = ring;
    this.wide[W_N] = n;
    this.armed = armed;
    this.prevV = prevV;
    this.cnt = cnt;
    this.wide[W_START] = winStart;
    this.synced = synced;
    this.flags = flags;
    this.wide[W_SV] = sv;
    this.wide[W_SI] = si;
    this.wide[W_SVV] = svv;
    this.wide[W_SII] = sii;
    this.wide[W_SVI] = svi;
    this.minV = minV;
    this.maxV = maxV;
    this.minI = minI;
    this.maxI = maxI;
    this.zcCount = zcCount;
    this.zcFirstOff = zcFirstOff;
    this.zcFirstPrev = zcFirstPrev;
    this.zcFirstCur = zcFirstCur;
    this.zcLastOff = zcLastOff;
    this.zcLastPrev = zcLastPrev;
    this.zcLastCur = zcLastCur;
    this.fold();
    if (badSample >= 0) {
      throw new DspInputError(
        `sample ${badSample} of the block (index ${n}): code (${cv[badSample]}, ${ci[badSample]}) is outside 0 … ${CODE_MAX}`,
        out,
        this.lastEnergies,
      );
    }
  }

  /** Move the double partial sums into the BigInt parts (keeps them ≤ 2^53, see EXACT). */
  private fold(): void {
    if (this.cnt === 0) return;
    this.bigSv += BigInt(this.wide[W_SV]!);
    this.bigSi += BigInt(this.wide[W_SI]!);
    this.bigSvv += BigInt(this.wide[W_SVV]!);
    this.bigSii += BigInt(this.wide[W_SII]!);
    this.bigSvi += BigInt(this.wide[W_SVI]!);
    this.wide.fill(0, W_SV);
  }
}
