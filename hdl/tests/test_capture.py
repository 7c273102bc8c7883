"""CaptureBuffer: decimation, immediate and level triggers with hysteresis, pretrigger, re-arming,
reading back oldest first; every capture checked against a model of the recorded stream."""
import math

import pytest

from crabwatt.capture import (CaptureBuffer, TRIGGER_IMMEDIATE, TRIGGER_V_RISING,
                              TRIGGER_V_FALLING, TRIGGER_I_RISING, TRIGGER_I_FALLING)
from simhelpers import simulate, rng_for

INDEX0 = 1000   # sample index of the testbench's first pair


def reference(pairs_in, first_after_arm, P, Q, mode, level, D=1, H=0):
    """Expected (trigger sample position, captured pairs) for samples from `first_after_arm` on.

    Written from the documented rules, independently of the gateware's state machine: the recorded
    stream is every D-th pair from the first after arming; with H = 0 a level trigger is a crossing
    between two consecutive recorded pairs, with H > 0 the channel must have been beyond the band
    (level -/+ H) since it was last past the level."""
    chan = 0 if mode in (TRIGGER_V_RISING, TRIGGER_V_FALLING) else 1
    rising = mode in (TRIGGER_V_RISING, TRIGGER_I_RISING)
    positions = list(range(first_after_arm, len(pairs_in), D))
    for r, k in enumerate(positions):
        if r < Q:
            continue
        if mode == TRIGGER_IMMEDIATE:
            hit = True
        else:
            values = [pairs_in[p][chan] for p in positions[:r + 1]]
            cur = values[-1]
            hit = False
            if (cur >= level) if rising else (cur < level):
                # Walk back over the pairs not past the level: one of them must be beyond the band.
                for prev in reversed(values[:-1]):
                    if (prev >= level) if rising else (prev < level):
                        break
                    if (prev < level - H) if rising else (prev >= level + H):
                        hit = True
                        break
        if hit:
            want = positions[r - Q:r - Q + P]
            return k, [pairs_in[p] for p in want] if len(want) == P else None
    return None, None


def run_capture(pairs_in, P, Q, mode, level, *, arm_at, depth=64, rng, D=1, H=0, rearm_at=None):
    dut = CaptureBuffer(depth=depth)
    result = {}

    async def tb(ctx):
        ctx.set(dut.pairs, P)
        ctx.set(dut.pretrigger, Q)
        ctx.set(dut.trigger, mode)
        ctx.set(dut.level, level)
        ctx.set(dut.decimation, D)
        ctx.set(dut.hysteresis, H)
        for n, (v, i) in enumerate(pairs_in):
            if n == arm_at or n == rearm_at:
                ctx.set(dut.arm, 1)
                await ctx.tick()
                ctx.set(dut.arm, 0)
            ctx.set(dut.sample, {"v": v, "i": i, "index": INDEX0 + n, "config_seq": 7})
            ctx.set(dut.sample_valid, 1)
            await ctx.tick()
            ctx.set(dut.sample_valid, 0)
            while rng.random() < 0.5:
                await ctx.tick()
        result["done"] = ctx.get(dut.done)
        result["state"] = (ctx.get(dut.armed), ctx.get(dut.triggered))
        if result["done"]:
            result["trigger_index"] = ctx.get(dut.trigger_index)
            result["first_index"] = ctx.get(dut.first_index)
            result["config_seq"] = ctx.get(dut.config_seq)
            got = []
            for a in range(P):
                ctx.set(dut.read_addr, a)
                await ctx.tick()
                d = ctx.get(dut.read_data)
                got.append((d.v, d.i))
            result["pairs"] = got

    simulate(dut, [tb], "capture")
    return result


def sine(n, period, amp, phase=0.0):
    return [(round(amp * math.sin(2 * math.pi * k / period)),
             round(amp / 2 * math.sin(2 * math.pi * k / period + phase))) for k in range(n)]


def check(got, pairs_in, arm_at, P, Q, mode, level, D=1, H=0):
    k, want = reference(pairs_in, arm_at, P, Q, mode, level, D, H)
    assert k is not None and want is not None, "the stimulus must complete a capture"
    assert got["done"] == 1
    assert got["trigger_index"] == INDEX0 + k
    assert got["first_index"] == INDEX0 + k - Q * D
    assert got["config_seq"] == 7
    assert got["pairs"] == want
    return k


@pytest.mark.parametrize("mode,level", [
    (TRIGGER_IMMEDIATE, 0), (TRIGGER_V_RISING, 100), (TRIGGER_V_FALLING, -50),
    (TRIGGER_I_RISING, 0), (TRIGGER_I_FALLING, 200)])
def test_trigger_and_pretrigger(mode, level):
    pairs_in = sine(200, 37, 1000, 1.0)
    P, Q, arm_at = 40, 13, 5
    got = run_capture(pairs_in, P, Q, mode, level, arm_at=arm_at, rng=rng_for(f"cap{mode}"))
    check(got, pairs_in, arm_at, P, Q, mode, level)


@pytest.mark.parametrize("D,mode,level", [
    (2, TRIGGER_IMMEDIATE, 0), (3, TRIGGER_V_RISING, 300), (7, TRIGGER_I_FALLING, -100),
    (16, TRIGGER_V_FALLING, 0)])
def test_decimated_capture_is_every_dth_pair(D, mode, level):
    # Period 131 is prime to every D, so each decimation samples the sine at other phases.
    pairs_in = sine(40 * D + 300, 131, 2000, 0.7)
    P, Q, arm_at = 24, 9, 3
    got = run_capture(pairs_in, P, Q, mode, level, arm_at=arm_at, rng=rng_for(f"dec{D}"), D=D)
    k = check(got, pairs_in, arm_at, P, Q, mode, level, D)
    # The trigger pair is itself recorded, on the decimation grid that starts at arming.
    assert (k - arm_at) % D == 0
    assert got["pairs"][Q] == pairs_in[k]


def test_trigger_looks_at_recorded_pairs_only():
    # A narrow spike between two recorded pairs would fire a full-rate trigger; it must not fire here.
    D, arm_at = 4, 0
    pairs_in = [(-100, 0)] * 200
    pairs_in[41] = (500, 0)              # 41 - arm_at is not a multiple of D: never recorded
    for n in range(120, 200):
        pairs_in[n] = (400, 0)           # the real edge
    got = run_capture(pairs_in, 8, 2, TRIGGER_V_RISING, 0, arm_at=arm_at, rng=rng_for("spike"), D=D)
    k = check(got, pairs_in, arm_at, 8, 2, TRIGGER_V_RISING, 0, D)
    assert k == 120


def test_decimation_zero_means_every_pair():
    pairs_in = sine(120, 29, 900)
    got = run_capture(pairs_in, 30, 5, TRIGGER_V_RISING, 0, arm_at=2, rng=rng_for("d0"), D=0)
    check(got, pairs_in, 2, 30, 5, TRIGGER_V_RISING, 0, D=1)


@pytest.mark.parametrize("mode", [TRIGGER_V_RISING, TRIGGER_V_FALLING, TRIGGER_I_RISING])
def test_hysteresis_ignores_noise_around_the_level(mode):
    # A sine with +/-60 LSB of alternating noise, armed just before it passes the level in the
    # wrong direction: without hysteresis the noise fires on that wrong-way slope; with H = 100
    # the trigger waits for the real edge half a period later.
    period, amp = 200, 1000
    rising = mode != TRIGGER_V_FALLING
    clean = [round(amp * math.sin(2 * math.pi * n / period)) for n in range(450)]
    noisy = [c + (60 if n % 2 else -60) for n, c in enumerate(clean)]
    chan = 1 if mode == TRIGGER_I_RISING else 0
    pairs_in = [(x, 7) if chan == 0 else (7, x) for x in noisy]
    P, Q, level = 20, 4, 0
    arm_at = period // 2 - 5 if rising else period - 5     # just before the wrong-way crossing
    early = run_capture(pairs_in, P, Q, mode, level, arm_at=arm_at, rng=rng_for("h0"), H=0)
    k0 = check(early, pairs_in, arm_at, P, Q, mode, level, H=0)
    late = run_capture(pairs_in, P, Q, mode, level, arm_at=arm_at, rng=rng_for("h100"), H=100)
    k100 = check(late, pairs_in, arm_at, P, Q, mode, level, H=100)

    def slope_up(k):
        return math.cos(2 * math.pi * k / period) > 0
    assert slope_up(k0) != rising, "without hysteresis the noise fires on the wrong slope"
    assert slope_up(k100) == rising and abs(clean[k100] - level) < 200, "hysteresis fires at the real edge"


def test_hysteresis_needs_the_signal_beyond_the_band():
    # The channel never goes below level - H, so a rising trigger with that H never fires.
    pairs_in = [(-50 if n % 3 else 60, 0) for n in range(150)]
    got = run_capture(pairs_in, 10, 2, TRIGGER_V_RISING, 0, arm_at=1, rng=rng_for("band"), H=50)
    assert got["done"] == 0 and got["state"] == (1, 0)
    got = run_capture(pairs_in, 10, 2, TRIGGER_V_RISING, 0, arm_at=1, rng=rng_for("band49"), H=49)
    check(got, pairs_in, 1, 10, 2, TRIGGER_V_RISING, 0, H=49)


def test_rearm_restarts_the_decimation_grid():
    D = 5
    pairs_in = sine(400, 97, 1500)
    got = run_capture(pairs_in, 30, 10, TRIGGER_IMMEDIATE, 0, arm_at=3, rearm_at=52,
                      rng=rng_for("rearm"), D=D)
    k = check(got, pairs_in, 52, 30, 10, TRIGGER_IMMEDIATE, 0, D)
    assert k == 52 + 10 * D


def test_full_depth_capture_wraps_the_ring():
    pairs_in = sine(300, 50, 3000)
    P, Q = 64, 63
    got = run_capture(pairs_in, P, Q, TRIGGER_V_RISING, 0, arm_at=100, rng=rng_for("wrap"))
    check(got, pairs_in, 100, P, Q, TRIGGER_V_RISING, 0)


def test_no_crossing_stays_armed():
    pairs_in = [(5, 5)] * 80
    got = run_capture(pairs_in, 10, 2, TRIGGER_V_RISING, 100, arm_at=3, rng=rng_for("idle"))
    assert got["done"] == 0 and got["state"] == (1, 0)


def test_depth_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        CaptureBuffer(depth=1000)
