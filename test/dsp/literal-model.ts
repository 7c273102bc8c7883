// A deliberately plain, slow transcription of docs/dsp.md in BigInt, line by line: the test oracle
// for the fast model (server/dsp/model.ts). It shares no arithmetic with the fast model; only the
// types and the flag constants come from elsewhere. Not product code.

import { WINDOW_FLAG, WINDOW_MODE } from '../../server/protocol/definition.ts';
import type { DspConfig, WindowRecord } from '../../server/dsp/model.ts';

export interface LiteralCommit {
  at_sample: number;
  config: DspConfig;
}

export interface LiteralResult {
  windows: WindowRecord[];
  /** E at each window's end_index */
  energies: bigint[];
  energyFinal: bigint;
}

const B = BigInt;
// `>>` on BigInt is an arithmetic shift (floor), as the doc's notation.
const sat18 = (x: bigint): [bigint, boolean] =>
  x > 131071n ? [131071n, true] : x < -131072n ? [-131072n, true] : [x, false];

export function literalModel(
  cv: ArrayLike<number>,
  ci: ArrayLike<number>,
  initial: DspConfig,
  commits: readonly LiteralCommit[] = [],
): LiteralResult {
  const count = cv.length;
  const x0v: bigint[] = [];
  const x0i: bigint[] = [];
  const hist = (line: bigint[], k: number): bigint => (k < 0 ? 0n : line[k]!);

  let cfg = initial;
  let configSeq = 0;
  let armed = false;
  let E = 0n;
  let prevV = 0n;
  const windows: WindowRecord[] = [];
  const energies: bigint[] = [];

  // The open window
  let s = 0;
  let samples = 0;
  let w = freshWindow();
  function freshWindow() {
    return {
      sum_v: 0n, sum_i: 0n, sum_vv: 0n, sum_ii: 0n, sum_vi: 0n,
      min_v: 0n, max_v: 0n, min_i: 0n, max_i: 0n,
      zc_count: 0, zc: [] as { offset: number; prev: bigint; cur: bigint }[],
      flags: 0, startsOnCrossing: false,
    };
  }
  function close(e: number, extra: number): void {
    let flags = w.flags | extra;
    if (cfg.mode === WINDOW_MODE.CYCLES && !w.startsOnCrossing) flags |= WINDOW_FLAG.PARTIAL;
    const first = w.zc[0];
    const last = w.zc[w.zc.length - 1];
    windows.push({
      end_index: B(e),
      samples,
      sum_v: w.sum_v, sum_i: w.sum_i, sum_vv: w.sum_vv, sum_ii: w.sum_ii, sum_vi: w.sum_vi,
      min_v: Number(w.min_v), max_v: Number(w.max_v), min_i: Number(w.min_i), max_i: Number(w.max_i),
      zc_count: w.zc_count,
      zc_first_offset: first?.offset ?? 0,
      zc_first_prev: Number(first?.prev ?? 0n),
      zc_first_cur: Number(first?.cur ?? 0n),
      zc_last_offset: last?.offset ?? 0,
      zc_last_prev: Number(last?.prev ?? 0n),
      zc_last_cur: Number(last?.cur ?? 0n),
      flags,
      config_seq: configSeq,
    });
    energies.push(E);
    s = e;
    samples = 0;
    w = freshWindow();
  }

  // z = x0[n−d]·65536 + f·(x0[n−d−1] − x0[n−d]); zq = (z + 8192) >> 14
  function align(line: bigint[], n: number, d: number, f: number): bigint {
    const a = hist(line, n - d);
    const z = a * 65536n + B(f) * (hist(line, n - d - 1) - a);
    return (z + 8192n) >> 14n;
  }

  for (let n = 0; n < count; n++) {
    for (const c of commits) {
      if (c.at_sample !== n) continue;
      if (samples > 0) close(n, WINDOW_FLAG.CONFIG);
      cfg = c.config;
      configSeq = (configSeq + 1) % 65536;
      armed = false;
    }
    const cvn = cv[n]!;
    const cin = ci[n]!;
    x0v.push(B(cvn) - 8192n);
    x0i.push(B(cin) - 8192n);

    const a = Math.abs(cfg.phase);
    const d = Math.floor(a / 65536);
    const f = a % 65536;
    const zqv = cfg.phase < 0 ? align(x0v, n, d, f) : align(x0v, n, 0, 0);
    const zqi = cfg.phase > 0 ? align(x0i, n, d, f) : align(x0i, n, 0, 0);
    // y = sat18((x1·gain + 8192) >> 14), quarter-LSB
    const [v, satV] = sat18(((zqv - B(cfg.v_offset)) * B(cfg.v_gain) + 8192n) >> 14n);
    const [i, satI] = sat18(((zqi - B(cfg.i_offset)) * B(cfg.i_gain) + 8192n) >> 14n);

    // crossing: armed && y >= 0; arming: y < −4·zc_hysteresis
    const zc: boolean = armed && v >= 0n;
    armed = zc ? false : armed || v < -4n * B(cfg.zc_hysteresis);

    if (cfg.mode === WINDOW_MODE.CYCLES && zc && n > s && samples > 0) {
      // count = crossings among s … n−1 = crossings recorded so far in the open window
      if (w.zc.length === cfg.cycles || !w.startsOnCrossing) close(n, 0);
    }
    if (samples === 0) {
      w.startsOnCrossing = zc;
      w.min_v = w.max_v = v >> 2n;
      w.min_i = w.max_i = i >> 2n;
    }
    samples++;
    if (cvn === 0 || cvn === 16383) w.flags |= WINDOW_FLAG.CLIP_V;
    if (cin === 0 || cin === 16383) w.flags |= WINDOW_FLAG.CLIP_I;
    if (satV) w.flags |= WINDOW_FLAG.SAT_V;
    if (satI) w.flags |= WINDOW_FLAG.SAT_I;
    w.sum_v += v;
    w.sum_i += i;
    w.sum_vv += v * v;
    w.sum_ii += i * i;
    w.sum_vi += v * i;
    E += v * i;
    // min/max/zc are recorded in whole LSB: y >> 2
    if (v >> 2n < w.min_v) w.min_v = v >> 2n;
    if (v >> 2n > w.max_v) w.max_v = v >> 2n;
    if (i >> 2n < w.min_i) w.min_i = i >> 2n;
    if (i >> 2n > w.max_i) w.max_i = i >> 2n;
    if (zc) {
      w.zc.push({ offset: n - s, prev: prevV >> 2n, cur: v >> 2n });
      if (w.zc_count === 65535) w.flags |= WINDOW_FLAG.ZC_OVERFLOW;
      else w.zc_count++;
    }
    prevV = v;
    const limit = cfg.mode === WINDOW_MODE.CYCLES ? cfg.max_samples : cfg.fixed_samples;
    if (samples === limit) close(n + 1, cfg.mode === WINDOW_MODE.CYCLES ? WINDOW_FLAG.TIMEOUT : 0);
  }
  // Commits at or after the last sample still count (their window closes at that boundary).
  for (const c of commits) {
    if (c.at_sample < count) continue;
    if (c.at_sample > count) throw new RangeError(`commit at ${c.at_sample} is past the stimulus (${count} samples)`);
    if (samples > 0) close(count, WINDOW_FLAG.CONFIG);
    configSeq = (configSeq + 1) % 65536;
  }
  return { windows, energies, energyFinal: E };
}
