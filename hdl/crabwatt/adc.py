"""AdcCapture: the AD7357 serial interface in the SCLK clock domain, samples into the system domain.

One conversion is a frame of FRAME_SCLK = 18 periods of the `adc` clock (72 MHz from the PLL, so
exactly 4.000 Msps, docs/dsp.md):

    frame cycle   0   | 1 2 ... 16 | 17
    CS            low ...................| high (quiet time: one period, 13.9 ns >= tQUIET)
    SCLK          low | pulses ....      | low  (SCLK = the adc clock itself, forwarded by a DDR
                                                 output: high in the first half of an enabled cycle)

Cycle 0 gives the ADC time to drive its first leading zero (t3) before the first SCLK falling
edge reads it, and the CS-to-SCLK setup (t2) becomes 1.5 periods.

The ADC samples both inputs on the CS falling edge, drives its first leading zero from CS and
shifts the next bit out on every SCLK falling edge: 2 leading zeros then 14 bits, MSB first.
The capture point is adjustable, because the data-access budget is tight: bit k is valid at the
FPGA from t4 (11 ns max) plus the round trip (FPGA output -> ADC -> FPGA input) after the SCLK
falling edge that shifted it out until t7 (3.5 ns min) plus the round trip after the next one: an
eye of 13.9 - 11 + 3.5 = 6.4 ns that moves with the board. SDATA is taken by an input register in
the `adc_rd` domain, the 72 MHz clock from a PLL output whose phase the firmware moves in steps of
1/64 period (217 ps, `READ_STEPS`), and `read_delay` says where: bit k is sampled read_delay/64
periods after the FPGA's output register launches the rising edge of SCLK pulse k + 1 (the pulse
after the one whose falling edge shifted bit k out). 32 is that pulse's falling edge, the fixed
capture point of earlier builds; the I/O delays move the eye later. Bits 5..0 are the PLL phase, bits 7..6
whole periods. The retiming into `adc` takes a sample read in the first half of an `adc` period
(phase 0..31) on the next rising edge, and one read in the second half (32..63) first on the
falling edge after it, then on the rising edge: every crossing has at least half a period (6.9 ns)
from the read register to the register that takes it, whatever the phase. (The read register sits
in the pin's I/O cell; nextpnr puts the path to the fabric at ~3.5 ns. A read at the same instant
as the taking edge is a hold check, met by that path's delay.) The bring-up scan (crabwatt.adc_timing) chooses read_delay.

A wrong capture point is caught, not silently wrong: one bit late (data early) reads LZ2, D13...
and trips the leading-zero check whenever D13 is 1; one bit early (data late) reads LZ1, LZ1, LZ2,
D13..D1, codes halved, which no frame check can see (the only bits the AD7357 guarantees are its
zeros, and its three-state line after the LSB keeps its charge at 72 MHz): the scan with the inputs
at a known level (shorted: mid-scale) catches it, see crabwatt.adc_timing. The AD7357 codes
straight binary (as docs/dsp.md assumes); `twos_complement=True` converts a twos-complement part to
the same codes.

Pin-level interface (the top level puts the buffers around it):
    cs_n, sclk_en:  controls for the current adc cycle (registered by the output buffers); registers
                    themselves, CS high and SCLK idle in reset.
    sdata:          bit 0 = SDATA_A (voltage), bit 1 = SDATA_B (current), as the `adc_rd` input
                    register took it (one register, clocked `read_delay % 64` steps after `adc`).
    read_delay:     the capture point (above); quasi-static: a change garbles the frames in flight.
    read_settled:   (any domain) the read clock's phase is where read_delay says (PhaseStepper.settled).

While the read clock's phase walks (after power-on from the PLL's configured phase to read_delay, and
after every change of read_delay) the bits are taken at moving, wrong points, and the codes can come out
halved with the leading zeros right. No such conversion becomes a sample: before the first conversion
read wholly at a settled phase none is numbered (sample 0 is the first good one, so power-up costs no
drops); after that, a conversion with the phase unsettled during its bits, or during the frame before
them (the PLL and the synchronizer lag the stepper), is dropped with its index used up, so it counts in
`samples_dropped` like a conversion the system side could not take.

Clock-domain crossing: each finished conversion (codes, 64-bit sample index counted from the
adc-domain reset, leading-zero error bit) is written to an AsyncFIFO. A conversion that finds the
FIFO full is dropped but its index is used up, so the system side sees the gap, counts it in
`samples_dropped` and the sample index stays true time.
"""
from amaranth import *
from amaranth.lib import wiring, stream, fifo, data
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from .dsp.layouts import SampleLayout, CODE_BITS

FRAME_SCLK = 18
BITS_PER_FRAME = 16          # 2 leading zeros + 14 data bits
READ_STEPS = 64              # PLL phase steps per period: 1/8 of the 576 MHz VCO's period, 217 ps
READ_DELAY_BITS = 8          # 4 periods of capture points
#: The capture point for a board whose I/O round trip (output + input delay, traces) is 2 ns: the
#: middle of the eye with t4 at its 11 ns maximum (`python hdl/adc_eye.py` shows the eye).
DEFAULT_READ_DELAY = 43


def read_latency(read_delay):
    """adc cycles from the cycle whose controls launch an SCLK pulse to the cycle in which the bit
    sampled `read_delay` steps after that launch is in the capture's shift register input: the
    output register, the whole periods, the read register, and the falling-edge retime of the
    second half-period's phases (32..63). Used by the gateware (as logic) and its tests (as numbers)."""
    phase = read_delay % READ_STEPS
    return 2 + read_delay // READ_STEPS + (phase >= READ_STEPS // 2)


class _Conversion(data.StructLayout):
    def __init__(self):
        super().__init__({"cv": CODE_BITS, "ci": CODE_BITS, "index": 64, "error": 1})


class AdcCapture(wiring.Component):
    """Serial capture for the AD7357 and the crossing into the system clock domain.

    Ports (adc domain):
        cs_n:     chip select for this cycle, active low.
        sclk_en:  SCLK pulses in this cycle.
        sdata:    SDATA_A/SDATA_B as the `adc_rd` input register took them.
        read_delay: the capture point (module docstring).
        read_settled: the read clock's phase has reached read_delay (any domain; synchronized here).
    Ports (sync domain):
        samples:          conversions in order: codes and sample index (stream).
        samples_dropped:  conversions lost because the system side did not keep up (saturates).
        adc_errors:       conversions whose two leading bits were not zero (saturates).
    """
    cs_n: Out(1, init=1)
    sclk_en: Out(1)
    sdata: In(2)
    read_delay: In(READ_DELAY_BITS)
    read_settled: In(1, init=1)
    samples: Out(stream.Signature(SampleLayout()))
    samples_dropped: Out(32)
    adc_errors: Out(32)

    def __init__(self, *, twos_complement=False, fifo_depth=16):
        self._twos_complement = twos_complement
        self._fifo_depth = fifo_depth
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        adc = m.d.adc

        # Frame sequencer. The controls are registers whose reset values are CS high and SCLK
        # idle: a reset in the middle of a conversion (the watchdog's) ends it at once, and the ADC
        # sees CS high for the whole reset, then a clean CS fall (never more than 16 SCLKs).
        frame = Signal(range(FRAME_SCLK))
        adc += frame.eq(Mux(frame == FRAME_SCLK - 1, 0, frame + 1))
        adc += [
            self.cs_n.eq(frame == FRAME_SCLK - 1),
            self.sclk_en.eq((frame >= 1) & (frame <= BITS_PER_FRAME)),
        ]
        shown = Signal(range(FRAME_SCLK + 1), init=FRAME_SCLK)    # the frame cycle the controls show
        adc += shown.eq(frame)

        # Retime the read register into `adc`: directly on the next rising edge for a read in the
        # first half-period, through the falling-edge register for one in the second, so no crossing
        # has less than half a period.
        phase = self.read_delay[:6]
        via_fall = phase[5]
        m.domains.adc_fall = fall = ClockDomain("adc_fall", clk_edge="neg", local=True, reset_less=True)
        m.d.comb += fall.clk.eq(ClockSignal("adc"))
        at_fall = Signal(2)
        m.d.adc_fall += at_fall.eq(self.sdata)
        bit = Signal(2)
        adc += bit.eq(Mux(via_fall, at_fall, self.sdata))

        # The frame position of the bit arriving now: the controls' frame cycle, delayed by
        # read_latency(read_delay). After reset the pipe holds "no bit" until it fills.
        latency = Signal(range(read_latency((1 << READ_DELAY_BITS) - 1) + 1))
        m.d.comb += latency.eq(2 + self.read_delay[6:] + via_fall)
        pipe = [Signal(range(FRAME_SCLK + 1), init=FRAME_SCLK, name=f"frame_rt{k}")
                for k in range(read_latency((1 << READ_DELAY_BITS) - 1))]
        adc += pipe[0].eq(shown)
        for a, b in zip(pipe, pipe[1:]):
            adc += b.eq(a)
        arriving = Signal(range(FRAME_SCLK + 1))
        m.d.comb += arriving.eq(Array(pipe)[latency - 1])

        shift_v = Signal(BITS_PER_FRAME)
        shift_i = Signal(BITS_PER_FRAME)
        with m.If((arriving >= 1) & (arriving <= BITS_PER_FRAME)):
            adc += [shift_v.eq(Cat(bit[0], shift_v)), shift_i.eq(Cat(bit[1], shift_i))]

        # A whole frame is in the shift registers the cycle after its last bit arrived.
        done = Signal()
        adc += done.eq(arriving == BITS_PER_FRAME)
        index = Signal(64)

        # Conversions read at a settled phase only (module docstring). `steady` counts the adc cycles
        # the phase has been settled, up to a frame; a frame whose first bit arrives with less, or that
        # sees the phase move before its last bit, is dirty. Reset trusts the phase (a stepper that is
        # walking says so within the synchronizer's two cycles, before any first bit arrives).
        settled = Signal(init=1)
        m.submodules.read_settled_sync = FFSynchronizer(self.read_settled, settled, o_domain="adc", init=1)
        steady = Signal(range(FRAME_SCLK + 1), init=FRAME_SCLK)
        dirty = Signal()
        started = Signal()          # a good conversion has been numbered since reset
        with m.If(~settled):
            adc += [steady.eq(0), dirty.eq(1)]
        with m.Else():
            with m.If(steady != FRAME_SCLK):
                adc += steady.eq(steady + 1)
            with m.If((arriving == 1) & (steady == FRAME_SCLK)):
                adc += dirty.eq(0)
        good = Signal()
        m.d.comb += good.eq(done & ~dirty)

        m.submodules.cdc = cdc = fifo.AsyncFIFO(
            width=_Conversion().size, depth=self._fifo_depth,
            w_domain="adc", r_domain="sync")
        conv = Signal(_Conversion())
        flip = (1 << (CODE_BITS - 1)) if self._twos_complement else 0
        m.d.comb += [
            conv.cv.eq(shift_v[:CODE_BITS] ^ flip),
            conv.ci.eq(shift_i[:CODE_BITS] ^ flip),
            conv.index.eq(index),
            conv.error.eq(shift_v[CODE_BITS:].any() | shift_i[CODE_BITS:].any()),
            cdc.w_data.eq(conv),
            cdc.w_en.eq(good),
        ]
        with m.If(good):
            adc += started.eq(1)
        with m.If(good | (done & started)):
            adc += index.eq(index + 1)

        # System side: pass conversions on, count the index gaps and the bad frames.
        out = Signal(_Conversion())
        m.d.comb += [
            out.eq(cdc.r_data),
            self.samples.valid.eq(cdc.r_rdy),
            self.samples.payload.cv.eq(out.cv),
            self.samples.payload.ci.eq(out.ci),
            self.samples.payload.index.eq(out.index),
            cdc.r_en.eq(self.samples.ready),
        ]
        expected = Signal(64)
        with m.If(self.samples.valid & self.samples.ready):
            m.d.sync += expected.eq(out.index + 1)
            gap = out.index - expected
            total = self.samples_dropped + gap
            m.d.sync += self.samples_dropped.eq(Mux(gap[32:].any() | total[32:].any(),
                                                    0xFFFF_FFFF, total[:32]))
            with m.If(out.error & (self.adc_errors != 0xFFFF_FFFF)):
                m.d.sync += self.adc_errors.eq(self.adc_errors + 1)
        return m
