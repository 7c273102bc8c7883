"""AdcCapture against the AD7357 timing model, through the async FIFO into the system domain."""
import pytest

from amaranth import *

from crabwatt.adc import AdcCapture, FRAME_SCLK
from ad7357_model import AD7357, TimingViolation, T4_NS
from simhelpers import simulate, stream_get_lazy, rng_for, SYS_PERIOD_S

ADC_PERIOD_NS = 1e9 / 72e6
INPUT_LATENCY = 1     # the DDR input register: the falling-edge bit is seen one edge later


class _Dut(Elaboratable):
    def __init__(self, capture):
        self.capture = capture

        self.cd_adc = ClockDomain("adc")
        self.cd_sync = ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        m.domains += [self.cd_adc, self.cd_sync]
        m.submodules.capture = self.capture
        return m


def run_capture(codes, *, out_delay_ns=1.0, in_delay_ns=1.0, consumer_busy=0.3, stall_cycles=0, n_read=None,
                rng_name="adc", corrupt=(), reset_at=None, allow_abort=False):
    """Run the capture against the model; returns (samples read, counters, model).

    corrupt: conversion numbers whose first leading zero is read as 1 on both lines (a fault).
    reset_at: adc cycle at which the adc and sync domains are reset for 4 cycles (a watchdog reset).
    """
    rng = rng_for(rng_name)
    cap = AdcCapture(round_trip=1 + INPUT_LATENCY)
    adc_model = AD7357(codes, out_delay_ns=out_delay_ns, in_delay_ns=in_delay_ns, allow_abort=allow_abort)
    dut = _Dut(cap)
    got = []
    n_read = len(codes) if n_read is None else n_read
    frames = len(codes)

    async def pins(ctx):
        """The output buffer (latency 1), the board, the ADC and the DDR input register."""
        t_edge = 0.0
        pending = [0] * INPUT_LATENCY
        cs_level = True
        cycles = 0
        async for _, _, cs_n, sclk_en in ctx.tick("adc").sample(cap.cs_n, cap.sclk_en):
            cycles += 1
            t_edge += ADC_PERIOD_NS
            if reset_at is not None and reset_at <= cycles < reset_at + 4:
                ctx.set(dut.cd_adc.rst, 1)
                ctx.set(dut.cd_sync.rst, 1)
                resets.append((cycles, bool(cs_n), bool(sclk_en)))
            elif reset_at is not None and cycles == reset_at + 4:
                ctx.set(dut.cd_adc.rst, 0)
                ctx.set(dut.cd_sync.rst, 0)
            if adc_model.conversions + adc_model.aborted >= frames:
                break
            if bool(cs_n) != cs_level:
                cs_level = bool(cs_n)
                adc_model.cs(t_edge, cs_level)
            bits = (0, 0)
            if sclk_en:
                adc_model.sclk(t_edge, True)
                fall = t_edge + ADC_PERIOD_NS / 2
                adc_model.sclk(fall, False)
                if not cs_n:
                    bits = adc_model.read(fall)
                    if adc_model.conversions in corrupt and adc_model.falls == 1:
                        bits = (1, 1)
            pending.append(bits[0] | bits[1] << 1)
            ctx.set(cap.sdata, pending.pop(0))

    async def consumer(ctx):
        if stall_cycles:
            await ctx.tick().repeat(stall_cycles)
        for _ in range(n_read):
            s = await stream_get_lazy(ctx, cap.samples, rng, consumer_busy)
            got.append((s.cv, s.ci, s.index))
        await ctx.tick().repeat(4)
        counters["dropped"] = ctx.get(cap.samples_dropped)
        counters["errors"] = ctx.get(cap.adc_errors)
        counters["controls_in_reset"] = resets

    counters = {}
    resets = []
    simulate(dut, [pins, consumer], "adc",
             clocks={"sync": SYS_PERIOD_S, "adc": ADC_PERIOD_NS * 1e-9})
    return got, counters, adc_model


def ramp_codes(n, rng):
    edge = [(0, 16383), (16383, 0), (8192, 8191), (0x2AAA, 0x1555)]
    return edge + [(rng.randrange(16384), rng.randrange(16384)) for _ in range(n - len(edge))]


def test_codes_indices_and_timing_through_the_fifo():
    codes = ramp_codes(60, rng_for("codes"))
    got, cap, model = run_capture(codes)
    assert [(cv, ci) for cv, ci, _ in got] == codes
    assert [idx for _, _, idx in got] == list(range(len(codes)))
    assert model.conversions >= len(codes)


def test_conversion_rate_is_4_msps():
    # 18 SCLK at 72 MHz: one conversion every 250 ns.
    assert FRAME_SCLK / 72e6 == pytest.approx(250e-9)


def test_model_rejects_reading_past_the_access_time():
    # A board round trip that pushes the new bit past the next falling edge must fail the read.
    codes = ramp_codes(4, rng_for("late"))
    with pytest.raises(TimingViolation, match="change window"):
        run_capture(codes, out_delay_ns=1.0, in_delay_ns=ADC_PERIOD_NS - T4_NS - 0.5)


def test_model_rejects_short_quiet_time_and_aborted_conversion():
    m = AD7357([(1, 2), (3, 4)])
    m.cs(0.0, False)
    for k in range(16):
        m.sclk(10 + 13.9 * k, True)
        m.sclk(17 + 13.9 * k, False)
    m.cs(240.0, True)
    with pytest.raises(TimingViolation, match="tQUIET"):
        m.cs(245.0, False)
    m2 = AD7357([(1, 2)])
    m2.cs(0.0, False)
    m2.sclk(10.0, True)
    m2.sclk(17.0, False)
    with pytest.raises(TimingViolation, match="tCONVERT"):
        m2.cs(30.0, True)


def test_slow_consumer_drops_whole_samples_and_counts_them():
    codes = ramp_codes(60, rng_for("drop"))
    # The consumer starts late: the 16-deep FIFO overflows, later samples arrive with true indices.
    got, cap, _ = run_capture(codes, consumer_busy=0.0, stall_cycles=48 * 8, n_read=20)
    indices = [idx for _, _, idx in got]
    assert indices == sorted(indices) and indices[-1] > len(got) - 1
    for cv, ci, idx in got:
        assert (cv, ci) == codes[idx]
    assert cap["dropped"] == indices[-1] + 1 - len(got)
    assert cap["errors"] == 0


def test_bad_leading_zeros_are_counted():
    codes = ramp_codes(12, rng_for("lz"))
    got, counters, _ = run_capture(codes, corrupt={3, 7})
    assert (counters["dropped"], counters["errors"]) == (0, 2)
    assert [idx for _, _, idx in got] == list(range(12))


def test_reset_mid_conversion_raises_cs_and_the_new_epoch_starts_clean():
    # A watchdog reset in the middle of conversion 3: CS must go high (and SCLK idle) during the
    # reset, so the ADC ends that conversion (aborted) and sees a clean CS fall afterwards; the first
    # sample of the new epoch (index 0) is the next conversion's codes, not a frame of 16+ SCLKs.
    codes = ramp_codes(12, rng_for("reset"))
    got, counters, model = run_capture(codes, consumer_busy=0.0, n_read=8, reset_at=3 * FRAME_SCLK + 9,
                                       allow_abort=True)
    assert model.aborted == 1
    # The reset is synchronous: from its second edge the controls show their reset values.
    assert all(cs_n and not sclk_en for _, cs_n, sclk_en in counters["controls_in_reset"][2:])
    assert [(cv, ci) for cv, ci, _ in got] == model.completed[:len(got)]
    indices = [idx for _, _, idx in got]
    restart = indices.index(0, 1)
    assert indices == list(range(restart)) + list(range(len(got) - restart))
    assert counters["errors"] == 0
