"""CaptureBuffer: immediate and level triggers, pretrigger, re-arming, reading back oldest first."""
import math

import pytest

from crabwatt.capture import (CaptureBuffer, TRIGGER_IMMEDIATE, TRIGGER_V_RISING,
                              TRIGGER_V_FALLING, TRIGGER_I_RISING, TRIGGER_I_FALLING)
from simhelpers import simulate, rng_for


def reference(pairs_in, first_after_arm, P, Q, mode, level):
    """Expected (trigger position, captured pairs) for samples from `first_after_arm` on."""
    chan = 0 if mode in (TRIGGER_V_RISING, TRIGGER_V_FALLING) else 1
    for k in range(first_after_arm, len(pairs_in)):
        if k - first_after_arm < Q:
            continue
        if mode == TRIGGER_IMMEDIATE:
            hit = True
        elif k == first_after_arm:
            hit = False
        else:
            a, b = pairs_in[k - 1][chan], pairs_in[k][chan]
            hit = (a < level <= b) if mode in (TRIGGER_V_RISING, TRIGGER_I_RISING) else (a >= level > b)
        if hit:
            return k, pairs_in[k - Q:k - Q + P]
    return None, None


def run_capture(pairs_in, P, Q, mode, level, *, arm_at, depth=64, rng):
    dut = CaptureBuffer(depth=depth)
    result = {}

    async def tb(ctx):
        ctx.set(dut.pairs, P)
        ctx.set(dut.pretrigger, Q)
        ctx.set(dut.trigger, mode)
        ctx.set(dut.level, level)
        for n, (v, i) in enumerate(pairs_in):
            if n == arm_at:
                ctx.set(dut.arm, 1)
                await ctx.tick()
                ctx.set(dut.arm, 0)
            ctx.set(dut.sample, {"v": v, "i": i, "index": 1000 + n, "config_seq": 7})
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


@pytest.mark.parametrize("mode,level", [
    (TRIGGER_IMMEDIATE, 0), (TRIGGER_V_RISING, 100), (TRIGGER_V_FALLING, -50),
    (TRIGGER_I_RISING, 0), (TRIGGER_I_FALLING, 200)])
def test_trigger_and_pretrigger(mode, level):
    pairs_in = sine(200, 37, 1000, 1.0)
    P, Q, arm_at = 40, 13, 5
    rng = rng_for(f"cap{mode}")
    k, want = reference(pairs_in, arm_at, P, Q, mode, level)
    assert k is not None and k + P - Q <= len(pairs_in)
    got = run_capture(pairs_in, P, Q, mode, level, arm_at=arm_at, rng=rng)
    assert got["done"] == 1
    assert got["trigger_index"] == 1000 + k
    assert got["first_index"] == 1000 + k - Q
    assert got["config_seq"] == 7
    assert got["pairs"] == want


def test_full_depth_capture_wraps_the_ring():
    pairs_in = sine(300, 50, 3000)
    P, Q = 64, 63
    k, want = reference(pairs_in, 100, P, Q, TRIGGER_V_RISING, 0)
    got = run_capture(pairs_in, P, Q, TRIGGER_V_RISING, 0, arm_at=100, rng=rng_for("wrap"))
    assert got["done"] == 1 and got["pairs"] == want and got["trigger_index"] == 1000 + k


def test_no_crossing_stays_armed():
    pairs_in = [(5, 5)] * 80
    got = run_capture(pairs_in, 10, 2, TRIGGER_V_RISING, 100, arm_at=3, rng=rng_for("idle"))
    assert got["done"] == 0 and got["state"] == (1, 0)


def test_depth_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        CaptureBuffer(depth=1000)
