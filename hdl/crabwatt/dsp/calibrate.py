"""One channel of docs/dsp.md "Phase alignment" and "Offset and gain", pipelined.

    x0 --> delay line (block RAM, 1024 x 14 bit) --> z = x0[n-d]*65536 + f*(x0[n-d-1] - x0[n-d])
       --> zq = (z + 8192) >> 14 --> x1 = zq - offset --> y = sat18((x1*gain + 8192) >> 14)

y is in quarter-LSB (docs/dsp.md), 18-bit signed, so the products after it are 18 x 18 signed.
Both multiplications here fit one MULT18X18D each (17 x 15 and 17 x 17 bits signed).

Timing: the block advances only in cycles where `en` is high (the owner stalls the whole DSP
pipeline at once). A sample presented on the inputs in a cycle with `en` high appears on `y`/`sat`
after exactly `LATENCY` further `en` cycles. The delay line is written only when `write` is high
(and `en`), so stalled cycles never disturb the history.
"""
from amaranth import *
from amaranth.lib import wiring, memory
from amaranth.lib.wiring import In, Out

from .layouts import CODE_BITS, HISTORY_DEPTH, Y_BITS, Y_MAX, Y_MIN


class ChannelCalibrator(wiring.Component):
    """Phase interpolation, offset and gain for one channel.

    Ports:
        en:      advance the pipeline this cycle.
        write:   the inputs hold a real sample (store `x0` in the history); valid with `en`.
        x0:      centred code c - 8192, ADC LSB.
        index:   sample index n of `x0` (its low bits address the delay line).
        delay:   d, whole samples of delay (0..1022) for this channel.
        frac:    f, 1/65536 sample of further delay towards x0[n-d-1].
        offset:  quarter-LSB of x0, subtracted after phase alignment.
        gain:    Q2.14 (16384 = 1.0).
        y:       calibrated value, quarter-LSB (18-bit signed), `LATENCY` en-cycles after the inputs.
        sat:     y was clamped to the 18-bit range.
    """
    LATENCY = 6

    en: In(1)
    write: In(1)
    x0: In(signed(CODE_BITS))
    index: In(64)
    delay: In(10)
    frac: In(16)
    offset: In(signed(16))
    gain: In(16)
    y: Out(signed(Y_BITS))
    sat: Out(1)

    def elaborate(self, platform):
        m = Module()
        en = self.en
        addr_bits = (HISTORY_DEPTH - 1).bit_length()

        m.submodules.history = history = memory.Memory(
            shape=signed(CODE_BITS), depth=HISTORY_DEPTH, init=[])
        wr = history.write_port()
        rd_a = history.read_port(domain="sync")     # x0[n-d]
        rd_b = history.read_port(domain="sync")     # x0[n-d-1]
        m.d.comb += [
            wr.addr.eq(self.index[:addr_bits]),
            wr.data.eq(self.x0),
            wr.en.eq(en & self.write),
            rd_a.addr.eq(self.index[:addr_bits] - self.delay),
            rd_b.addr.eq(self.index[:addr_bits] - self.delay - 1),
            rd_a.en.eq(en),
            rd_b.en.eq(en),
        ]

        # Stage 1: the history answers; samples before index 0 read as zero (docs/dsp.md), which
        # also makes the line independent of what the RAM held before a reset.
        high = self.index[addr_bits:].any()
        s1_cur = Signal(signed(CODE_BITS))
        s1_now = Signal()            # d == 0: x0[n-d] is the sample being written, not in RAM yet
        s1_a_ok = Signal()
        s1_b_ok = Signal()
        s1_frac = Signal(16)
        s1_offset = Signal(signed(16))
        s1_gain = Signal(16)
        with m.If(en):
            m.d.sync += [
                s1_cur.eq(self.x0),
                s1_now.eq(self.delay == 0),
                s1_a_ok.eq(high | (self.index[:addr_bits] >= self.delay)),
                s1_b_ok.eq(high | (self.index[:addr_bits] >= self.delay + 1)),
                s1_frac.eq(self.frac),
                s1_offset.eq(self.offset),
                s1_gain.eq(self.gain),
            ]
        xa = Signal(signed(CODE_BITS))
        xb = Signal(signed(CODE_BITS))
        m.d.comb += [
            xa.eq(Mux(s1_now, s1_cur, Mux(s1_a_ok, rd_a.data, 0))),
            xb.eq(Mux(s1_b_ok, rd_b.data, 0)),
        ]

        # Stage 2: neighbour difference.
        s2_xa = Signal(signed(CODE_BITS))
        s2_diff = Signal(signed(CODE_BITS + 1))
        s2_frac = Signal(16)
        s2_offset = Signal(signed(16))
        s2_gain = Signal(16)
        with m.If(en):
            m.d.sync += [
                s2_xa.eq(xa), s2_diff.eq(xb - xa), s2_frac.eq(s1_frac),
                s2_offset.eq(s1_offset), s2_gain.eq(s1_gain),
            ]

        # Stage 3: f * (x0[n-d-1] - x0[n-d]) in a multiplier (17 x 15 bit signed).
        s3_xa = Signal(signed(CODE_BITS))
        s3_prod = Signal(signed(32))
        s3_offset = Signal(signed(16))
        s3_gain = Signal(16)
        with m.If(en):
            m.d.sync += [
                s3_xa.eq(s2_xa), s3_prod.eq(s2_frac * s2_diff),
                s3_offset.eq(s2_offset), s3_gain.eq(s2_gain),
            ]

        # Stage 4: round to quarter-LSB and subtract the offset. zq stays inside 16 bits because
        # it lies between two 14-bit neighbours (docs/dsp.md), so bits 14..29 of z + 8192 are it.
        z = Signal(signed(33))
        m.d.comb += z.eq((s3_xa << 16) + s3_prod + 8192)
        zq = z[14:30].as_signed()
        s4_x1 = Signal(signed(17))
        s4_gain = Signal(16)
        with m.If(en):
            m.d.sync += [s4_x1.eq(zq - s3_offset), s4_gain.eq(s3_gain)]

        # Stage 5: x1 * gain in a multiplier (17 x 17 bit signed).
        s5_prod = Signal(signed(34))
        with m.If(en):
            m.d.sync += s5_prod.eq(s4_x1 * s4_gain)

        # Stage 6: round half up at 2^-14 (a quarter LSB) and saturate. |x1*gain| < 2^33, so the
        # rounded value fits 20 bits signed.
        rounded = Signal(signed(20))
        m.d.comb += rounded.eq((s5_prod + 8192) >> 14)
        with m.If(en):
            with m.If(rounded > Y_MAX):
                m.d.sync += [self.y.eq(Y_MAX), self.sat.eq(1)]
            with m.Elif(rounded < Y_MIN):
                m.d.sync += [self.y.eq(Y_MIN), self.sat.eq(1)]
            with m.Else():
                m.d.sync += [self.y.eq(rounded), self.sat.eq(0)]
        return m
