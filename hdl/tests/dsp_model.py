"""docs/dsp.md as plain Python integers: the oracle the gateware tests compare against.

Calibrated samples are in quarter-LSB (sat18); the pairs returned (what the capture buffer gets) and
the recorded extremes and crossing samples are in whole LSB, y >> 2.

Written from the document alone (not from the gateware), so a disagreement points at one of the
two. `run(codes, commits)` returns the windows (dicts named as the protocol's window frame, plus
`energy` at the window end) and the calibrated pairs.
"""
from crabwatt.dsp.layouts import CONFIG_RESET, MODE_CYCLES

CLIP_V, CLIP_I, SAT_V, SAT_I, PARTIAL, TIMEOUT, CONFIG, ZC_OVERFLOW = (1 << k for k in range(8))


def sat18(x):
    return max(-131072, min(131071, x))


def calibrate(x0_hist, n, d, f, offset, gain):
    """y[n] in quarter-LSB and whether it saturated, for one channel; x0_hist(k) is 0 for k < 0."""
    a = x0_hist(n - d)
    b = x0_hist(n - d - 1)
    z = a * 65536 + f * (b - a)
    zq = (z + 8192) >> 14
    x1 = zq - offset
    r = (x1 * gain + 8192) >> 14
    y = sat18(r)
    return y, y != r


class _Window:
    def __init__(self, start, start_zc, seq):
        self.start = start
        self.start_zc = start_zc
        self.seq = seq
        self.samples = 0
        self.sum_v = self.sum_i = self.sum_vv = self.sum_ii = self.sum_vi = 0
        self.min_v = self.max_v = self.min_i = self.max_i = None
        self.zc_count = 0
        self.first = self.last = (0, 0, 0)
        self.flags = 0

    def record(self, end_index, energy, extra_flags):
        return {
            "end_index": end_index, "samples": self.samples,
            "sum_v": self.sum_v, "sum_i": self.sum_i, "sum_vv": self.sum_vv,
            "sum_ii": self.sum_ii, "sum_vi": self.sum_vi,
            "min_v": self.min_v, "max_v": self.max_v, "min_i": self.min_i, "max_i": self.max_i,
            "zc_count": self.zc_count,
            "zc_first_offset": self.first[0], "zc_first_prev": self.first[1],
            "zc_first_cur": self.first[2],
            "zc_last_offset": self.last[0], "zc_last_prev": self.last[1],
            "zc_last_cur": self.last[2],
            "flags": self.flags | extra_flags, "config_seq": self.seq, "energy": energy,
        }


def run(codes, commits=(), config=None):
    """codes: [(cv, ci)] for n = 0, 1, ...; commits: [(b, config)] sorted by b."""
    cfg = dict(CONFIG_RESET if config is None else config)
    by_b = {}
    for b, c in commits:
        by_b.setdefault(b, []).append(c)
    hist_v, hist_i = [], []
    windows, pairs = [], []
    energy = 0
    seq = 0
    armed = False
    prev_v = 0
    win = None
    for n, (cv, ci) in enumerate(codes):
        changed = n in by_b
        if changed:
            old_cycles = cfg["mode"] == MODE_CYCLES
            cfg = dict(by_b[n][-1])
            seq += len(by_b[n])
            armed = False
        hist_v.append(cv - 8192)
        hist_i.append(ci - 8192)
        phase = cfg["phase"]
        a = abs(phase)
        d, f = a >> 16, a & 0xFFFF
        dv, fv = (d, f) if phase < 0 else (0, 0)
        di, fi = (d, f) if phase > 0 else (0, 0)
        v, sat_v = calibrate(lambda k: hist_v[k] if k >= 0 else 0, n, dv, fv, cfg["v_offset"], cfg["v_gain"])
        i, sat_i = calibrate(lambda k: hist_i[k] if k >= 0 else 0, n, di, fi, cfg["i_offset"], cfg["i_gain"])
        # Whole LSB (floor) wherever a sample itself is recorded: capture pairs, extremes, crossings.
        vq, iq = v >> 2, i >> 2
        pairs.append((vq, iq, seq))
        zc = armed and v >= 0
        armed = False if zc else (armed or v < -4 * cfg["zc_hysteresis"])

        flags = ((CLIP_V if cv in (0, 16383) else 0) | (CLIP_I if ci in (0, 16383) else 0)
                 | (SAT_V if sat_v else 0) | (SAT_I if sat_i else 0))
        cycles_mode = cfg["mode"] == MODE_CYCLES
        if win is not None and win.samples > 0:
            by_zc = cycles_mode and zc and (win.zc_count == cfg["cycles"] or not win.start_zc)
            if changed or by_zc:
                # PARTIAL: a CYCLES window (in the mode its samples were taken in) that did not
                # begin on a crossing, however it closes.
                win_cycles = old_cycles if changed else cycles_mode
                extra = (CONFIG if changed else 0) | (PARTIAL if win_cycles and not win.start_zc else 0)
                windows.append(win.record(n, energy, extra))
                win = None
        if win is None:
            win = _Window(n, zc, seq)
        w = win
        if zc:
            crossing = (n - w.start, prev_v >> 2, vq)
            if w.zc_count == 0:
                w.first = crossing
            w.last = crossing
            if w.zc_count == 0xFFFF:
                w.flags |= ZC_OVERFLOW
            else:
                w.zc_count += 1
        w.samples += 1
        w.sum_v += v
        w.sum_i += i
        w.sum_vv += v * v
        w.sum_ii += i * i
        w.sum_vi += v * i
        w.min_v = vq if w.min_v is None else min(w.min_v, vq)
        w.max_v = vq if w.max_v is None else max(w.max_v, vq)
        w.min_i = iq if w.min_i is None else min(w.min_i, iq)
        w.max_i = iq if w.max_i is None else max(w.max_i, iq)
        w.flags |= flags
        energy += v * i
        prev_v = v
        limit = cfg["max_samples"] if cycles_mode else cfg["fixed_samples"]
        if w.samples == limit:
            extra = (TIMEOUT | (0 if w.start_zc else PARTIAL)) if cycles_mode else 0
            windows.append(w.record(n + 1, energy, extra))
            win = None
    return windows, pairs, energy
