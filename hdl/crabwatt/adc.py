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
The capture samples SDATA on each SCLK falling edge (DDR input, falling-edge half), so bit k of
the frame is read one SCLK period after the ADC started driving it, the widest window at a given
SCLK. The AD7357 codes straight binary (as docs/dsp.md assumes); `twos_complement=True`
converts a twos-complement part to the same codes.

Pin-level interface (the top level puts the buffers around it):
    cs_n, sclk_en:  controls for the current adc cycle (registered by the output buffers); registers
                    themselves, CS high and SCLK idle in reset.
    sdata:          bit 0 = SDATA_A (voltage), bit 1 = SDATA_B (current), as sampled on the
                    SCLK falling edge of the frame cycle whose controls were presented
                    `round_trip` adc cycles earlier (output buffer latency + input buffer latency).

Clock-domain crossing: each finished conversion (codes, 64-bit sample index counted from the
adc-domain reset, leading-zero error bit) is written to an AsyncFIFO. A conversion that finds the
FIFO full is dropped but its index is used up, so the system side sees the gap, counts it in
`samples_dropped` and the sample index stays true time.
"""
from amaranth import *
from amaranth.lib import wiring, stream, fifo, data
from amaranth.lib.wiring import In, Out

from .dsp.layouts import SampleLayout, CODE_BITS

FRAME_SCLK = 18
BITS_PER_FRAME = 16          # 2 leading zeros + 14 data bits


class _Conversion(data.StructLayout):
    def __init__(self):
        super().__init__({"cv": CODE_BITS, "ci": CODE_BITS, "index": 64, "error": 1})


class AdcCapture(wiring.Component):
    """Serial capture for the AD7357 and the crossing into the system clock domain.

    Ports (adc domain):
        cs_n:     chip select for this cycle, active low.
        sclk_en:  SCLK pulses in this cycle.
        sdata:    SDATA_A/SDATA_B sampled on SCLK falling edges, `round_trip` cycles late.
    Ports (sync domain):
        samples:          conversions in order: codes and sample index (stream).
        samples_dropped:  conversions lost because the system side did not keep up (saturates).
        adc_errors:       conversions whose two leading bits were not zero (saturates).
    """
    cs_n: Out(1, init=1)
    sclk_en: Out(1)
    sdata: In(2)
    samples: Out(stream.Signature(SampleLayout()))
    samples_dropped: Out(32)
    adc_errors: Out(32)

    def __init__(self, *, round_trip=2, twos_complement=False, fifo_depth=16):
        if round_trip < 1:
            raise ValueError("round_trip counts at least the output register: it must be >= 1")
        self._round_trip = round_trip
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

        # The frame position of the bit arriving now: the controls' frame cycle, delayed by the
        # buffers' round trip. After reset the pipe holds "no bit" until it fills.
        arriving = Signal(range(FRAME_SCLK + 1), init=FRAME_SCLK)
        pipe = [Signal(range(FRAME_SCLK + 1), init=FRAME_SCLK, name=f"frame_rt{k}")
                for k in range(self._round_trip)]
        adc += pipe[0].eq(shown)
        for a, b in zip(pipe, pipe[1:]):
            adc += b.eq(a)
        m.d.comb += arriving.eq(pipe[-1])

        shift_v = Signal(BITS_PER_FRAME)
        shift_i = Signal(BITS_PER_FRAME)
        with m.If((arriving >= 1) & (arriving <= BITS_PER_FRAME)):
            adc += [shift_v.eq(Cat(self.sdata[0], shift_v)), shift_i.eq(Cat(self.sdata[1], shift_i))]

        # A whole frame is in the shift registers the cycle after its last bit arrived.
        done = Signal()
        adc += done.eq(arriving == BITS_PER_FRAME)
        index = Signal(64)

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
            cdc.w_en.eq(done),
        ]
        with m.If(done):
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
