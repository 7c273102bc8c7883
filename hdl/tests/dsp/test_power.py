"""PowerDsp against the docs/dsp.md oracle (tests/dsp_model.py), with random gaps on the input
and random back-pressure on the window consumer."""
import math

from crabwatt.dsp import PowerDsp, CONFIG_RESET, MODE_CYCLES, MODE_FIXED
from dsp_model import run as model_run
from dsp_harness import run_dut
from simhelpers import simulate, rng_for

def sine_codes(n, period, amp_v, amp_i, shift_rad, rng, noise=3, dc=0):
    out = []
    for k in range(n):
        t = 2 * math.pi * k / period
        cv = 8192 + dc + round(amp_v * math.sin(t)) + rng.randint(-noise, noise)
        ci = 8192 + round(amp_i * math.sin(t - shift_rad)) + rng.randint(-noise, noise)
        out.append((max(0, min(16383, cv)), max(0, min(16383, ci))))
    return out


def cfg(**kw):
    c = dict(CONFIG_RESET)
    c.update(kw)
    return c


def check(codes, commits, name, **kw):
    rng = rng_for(name)
    want_w, want_p, want_e = model_run(codes, commits)
    got_w, got_p, got_e = run_dut(codes, commits, rng=rng, expected_windows=len(want_w), **kw)
    assert len(got_p) == len(codes)
    assert got_p == want_p
    assert got_w == want_w
    assert got_e == want_e
    return want_w


def test_cycles_windows_with_commit_at_zero():
    rng = rng_for("cycles")
    codes = sine_codes(900, 80, 6000, 3000, 0.4, rng)
    wins = check(codes, [(0, cfg(cycles=2, max_samples=5000, zc_hysteresis=50))], "cycles")
    # The stimulus must really exercise the rules: a PARTIAL first window then synchronised ones.
    assert wins[0]["flags"] & 0x10 and len(wins) >= 4
    assert all(abs(w["samples"] - 160) <= 2 for w in wins[1:-1])


def test_phase_offset_gain_and_saturation_with_commits_mid_stream():
    rng = rng_for("calib")
    codes = sine_codes(700, 64, 7000, 7900, 1.0, rng, dc=200)
    commits = [
        (0, cfg(cycles=1, phase=3 * 65536 + 12345, v_offset=-300, i_gain=30000)),
        (150, cfg(cycles=1, phase=-(5 * 65536 + 40000), i_offset=77, v_gain=9000)),
        (151, cfg(mode=MODE_FIXED, fixed_samples=1, phase=-1)),   # two records from one sample
        (260, cfg(mode=MODE_FIXED, fixed_samples=37, phase=1022 * 65536 + 65535, v_gain=65535,
                   v_offset=-20000)),
        (500, cfg(cycles=3, max_samples=50, zc_hysteresis=0)),      # timeouts
    ]
    wins = check(codes, commits, "calib")
    flags = 0
    for w in wins:
        flags |= w["flags"]
    assert flags & 0x4 and flags & 0x40 and flags & 0x20, hex(flags)


def test_clip_flags_and_back_to_back_samples():
    rng = rng_for("clip")
    codes = sine_codes(300, 50, 9000, 9000, 0.0, rng)   # beyond full scale: codes at the rails
    wins = check(codes, [(0, cfg(mode=MODE_FIXED, fixed_samples=25))], "clip", gap=0.0, busy=0.7)
    assert any(w["flags"] & 0x3 == 0x3 for w in wins)


def test_latency_is_the_documented_property():
    # FIXED N = 1: every sample closes its own window, so each sample's latency is visible.
    dut = PowerDsp(reset_config=cfg(mode=MODE_FIXED, fixed_samples=1))
    seen = {}

    async def tb(ctx):
        ctx.set(dut.windows.ready, 1)
        ctx.set(dut.samples.valid, 1)
        ctx.set(dut.samples.payload, {"cv": 9000, "ci": 7000, "index": 0})
        await ctx.tick()              # the accepting edge
        ctx.set(dut.samples.valid, 0)
        for edge in range(1, 20):
            if ctx.get(dut.calibrated_valid) and "calibrated" not in seen:
                seen["calibrated"] = edge
            if ctx.get(dut.windows.valid) and "window" not in seen:
                seen["window"] = edge
                seen["v"] = ctx.get(dut.windows.payload).sum_v
            await ctx.tick()

    simulate(dut, [tb], "latency")
    assert seen == {"calibrated": PowerDsp.CALIBRATED_LATENCY, "window": PowerDsp.LATENCY,
                    "v": 4 * (9000 - 8192)}       # sums are in quarter-LSB


def test_reset_configuration_is_docs_defaults():
    dut = PowerDsp()
    got = {}

    async def tb(ctx):
        got["seq"] = ctx.get(dut.config_seq)
        got["pending"] = ctx.get(dut.commit_pending)

    simulate(dut, [tb], "reset")
    assert got == {"seq": 0, "pending": 0}
    assert CONFIG_RESET["v_gain"] == 16384 and CONFIG_RESET["max_samples"] == 4_000_000
    assert CONFIG_RESET["zc_hysteresis"] == 64 and CONFIG_RESET["mode"] == MODE_CYCLES


def test_detector_extremes_and_pairs_on_quarter_lsb():
    # v_offset 1 q: y = 4*x0 - 1. With h = 10 LSB the detector arms below -40 q: -45 and -41 arm,
    # -37 does not; y = -1 before a crossing is recorded as -1 LSB (floor), y = 3 after it as 0.
    x0 = [-11, 0, 1, 2, -10, 0, 1, -9, 1]
    codes = [(8192 + x, 8192 - x) for x in x0]
    config = cfg(mode=MODE_FIXED, fixed_samples=len(x0), zc_hysteresis=10, v_offset=1, i_offset=-1)
    (w,) = check(codes, [(0, config)], "quarter_lsb", gap=0.0)
    assert (w["zc_count"], w["zc_first_offset"], w["zc_last_offset"]) == (2, 2, 6)
    assert (w["zc_first_prev"], w["zc_first_cur"], w["zc_last_prev"], w["zc_last_cur"]) == (-1, 0, -1, 0)
    assert w["sum_v"] == sum(4 * x - 1 for x in x0)
    assert (w["min_v"], w["max_v"]) == ((4 * -11 - 1) >> 2, (4 * 2 - 1) >> 2)
    # i = -4*x0 + 1: its extremes floor too (45 -> 11, -7 -> -2).
    assert (w["min_i"], w["max_i"]) == (-2, 11)
    _, pairs, _ = model_run(codes, [(0, config)])
    assert [p[0] for p in pairs] == [(4 * x - 1) >> 2 for x in x0]
