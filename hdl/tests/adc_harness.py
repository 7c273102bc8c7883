"""AdcCapture in simulation against the AD7357 model: the FPGA's output register, the ADC, the
`adc_rd` read register at its PLL phase and the async FIFO into `sync`. Shared by test_adc.py and
hdl/adc_eye.py."""
from amaranth import *

from crabwatt.adc import AdcCapture, READ_STEPS, DEFAULT_READ_DELAY
from ad7357_model import AD7357
from simhelpers import simulate, stream_get_lazy, rng_for, SYS_PERIOD_S

ADC_PERIOD_NS = 1e9 / 72e6
STEP_NS = ADC_PERIOD_NS / READ_STEPS


class _Dut(Elaboratable):
    def __init__(self, capture):
        self.capture = capture
        self.cd_adc = ClockDomain("adc")
        self.cd_sync = ClockDomain("sync")
        self.cd_adc_rd = ClockDomain("adc_rd", reset_less=True)     # the testbench is its register

    def elaborate(self, platform):
        m = Module()
        m.domains += [self.cd_adc, self.cd_sync, self.cd_adc_rd]
        m.submodules.capture = self.capture
        return m


def run_capture(codes, *, read_delay=DEFAULT_READ_DELAY, consumer_busy=0.3, stall_cycles=0, n_read=None,
                rng_name="adc", corrupt=(), reset_at=None, model_rng=None, settled=None, **model_args):
    """Run the capture against the model; returns (samples read, counters, model).

    read_delay: the capture point (crabwatt.adc); the `adc_rd` clock runs at its phase.
    corrupt: conversion numbers whose first leading zero is read as 1 on both lines (a fault).
    reset_at: adc cycle at which the adc and sync domains are reset for 4 cycles (a watchdog reset).
    model_rng: reads inside a change window return random bits instead of failing the test.
    settled: adc cycle -> whether the read clock's phase is settled then (default: always).
    model_args: AD7357's delays and limits (out_delay_ns, in_delay_ns, t4_ns, t7_ns, allow_abort, ...).
    """
    rng = rng_for(rng_name)
    cap = AdcCapture()
    adc_model = AD7357(codes, rng=model_rng, **model_args)
    dut = _Dut(cap)
    got = []
    n_read = len(codes) if n_read is None else n_read
    frames = len(codes)
    whole, phase = divmod(read_delay, READ_STEPS)
    theta_ns = phase * STEP_NS
    used = set()            # read register edges whose sample the capture keeps
    resets = []
    counters = {}

    async def pins(ctx):
        """The output register (edge k at k periods) and the ADC."""
        ctx.set(cap.read_delay, read_delay)
        cycles = 0
        cs_level = True
        if settled is not None:
            ctx.set(cap.read_settled, settled(0))
        async for _, _, cs_n, sclk_en in ctx.tick("adc").sample(cap.cs_n, cap.sclk_en):
            cycles += 1
            if settled is not None:
                ctx.set(cap.read_settled, settled(cycles))
            t_edge = cycles * ADC_PERIOD_NS
            if adc_model.conversions + adc_model.aborted >= frames:
                break
            if bool(cs_n) != cs_level:
                cs_level = bool(cs_n)
                adc_model.cs(t_edge, cs_level)
            if sclk_en:
                adc_model.sclk(t_edge, True)
                adc_model.sclk(t_edge + ADC_PERIOD_NS / 2, False)
            # The pulse launched at the next edge is read `read_delay` steps later.
            if ctx.get(cap.sclk_en) and not ctx.get(cap.cs_n):
                used.add(cycles + 1 + whole)
            if reset_at is not None and reset_at <= cycles < reset_at + 4:
                ctx.set(dut.cd_adc.rst, 1)
                ctx.set(dut.cd_sync.rst, 1)
                resets.append((cycles, bool(cs_n), bool(sclk_en)))
            elif reset_at is not None and cycles == reset_at + 4:
                ctx.set(dut.cd_adc.rst, 0)
                ctx.set(dut.cd_sync.rst, 0)

    async def read_register(ctx):
        """The `adc_rd` input register: edge k at k periods plus the PLL phase."""
        edge = 0
        async for _ in ctx.tick("adc_rd"):
            edge += 1
            bits = adc_model.read(edge * ADC_PERIOD_NS + theta_ns, used=edge in used)
            if adc_model.conversions in corrupt and adc_model.falls == 2 and edge in used:
                bits = (1, 1)
            ctx.set(cap.sdata, bits[0] | bits[1] << 1)

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

    half_s = ADC_PERIOD_NS / 2 * 1e-9
    simulate(dut, [pins, consumer], "adc", processes=[read_register],
             clocks={"sync": SYS_PERIOD_S, "adc": (ADC_PERIOD_NS * 1e-9, half_s),
                     "adc_rd": (ADC_PERIOD_NS * 1e-9, half_s + theta_ns * 1e-9)})
    return got, counters, adc_model
