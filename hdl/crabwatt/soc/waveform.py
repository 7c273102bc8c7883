"""The decimated waveform FIFO: stream samples (v, i, j) from `crabwatt.dsp.Decimator`, kept or dropped
whole, read by the CPU through the WAVEFORM registers. Like the result FIFO it never makes the DSP wait."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..dsp.decimator import W_BITS

__all__ = ['WaveformFifo', 'WAVEFORM_FIFO_SAMPLES', 'J_BITS']

WAVEFORM_FIFO_SAMPLES = 256
J_BITS = 26


class WaveformFifo(wiring.Component):
    """`valid` pulses with stream sample `count` (j) on `v`, `i`; `pop` drops the oldest."""
    valid: In(1)
    v: In(signed(W_BITS))
    i: In(signed(W_BITS))
    count: In(48)
    head_v: Out(signed(W_BITS))
    head_i: Out(signed(W_BITS))
    head_j: Out(J_BITS)
    level: Out(16)
    pop: In(1)
    drops: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=2 * W_BITS + J_BITS, depth=WAVEFORM_FIFO_SAMPLES)
        m.d.comb += [
            fifo.w_data.eq(Cat(self.v, self.i, self.count[:J_BITS])),
            fifo.w_en.eq(self.valid),
            Cat(self.head_v, self.head_i, self.head_j).eq(fifo.r_data),
            self.level.eq(fifo.level),
            fifo.r_en.eq(self.pop),
        ]
        with m.If(self.valid & ~fifo.w_rdy & (self.drops != 0xFFFF_FFFF)):
            m.d.sync += self.drops.eq(self.drops + 1)
        return m
