"""Joins the DSP core (`crabwatt.dsp.PowerDsp`) to the SoC: configuration registers and commit,
window records into the result FIFO, and the sample counters.

The result FIFO drops whole records instead of waiting, so the DSP's window stream is always ready
and the DSP never stalls (docs/dsp.md: the DSP must never wait for the CPU or the link).
"""

from amaranth import *
from amaranth.lib import wiring

from ..dsp import PowerDsp

__all__ = ['DspLink']


class DspLink(Elaboratable):
    """`connect(m, soc, pair, valid)` feeds `pair` (cv, ci codes) into the DSP in cycles where `valid`
    is high, numbering the samples from 0. A pair arriving while the DSP cannot take it is counted
    in `samples_dropped` (it never happens with an always-ready result FIFO; the counter proves it)."""

    capture_depth = 0     # no capture buffer in this link yet

    def __init__(self):
        self.dsp = PowerDsp()
        self._wiring = None

    def connect(self, m, soc, pair, valid):
        self._wiring = (soc, pair, valid)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dsp = dsp = self.dsp
        soc, pair, valid = self._wiring
        index = Signal(64)
        dropped = Signal(32)
        m.d.comb += [
            dsp.samples.payload.cv.eq(pair.cv), dsp.samples.payload.ci.eq(pair.ci),
            dsp.samples.payload.index.eq(index), dsp.samples.valid.eq(valid),
        ]
        with m.If(valid & dsp.samples.ready):
            m.d.sync += index.eq(index + 1)
        with m.If(valid & ~dsp.samples.ready & (dropped != 0xFFFF_FFFF)):
            m.d.sync += dropped.eq(dropped + 1)

        m.d.comb += [
            dsp.staging.eq(soc.dsp_config), dsp.commit.eq(soc.dsp_commit),
            soc.dsp_config_seq.eq(dsp.config_seq), soc.dsp_commit_pending.eq(dsp.commit_pending),
            soc.sample_index.eq(dsp.next_index),
            dsp.windows.ready.eq(1),
            soc.window.eq(dsp.windows.payload), soc.window_valid.eq(dsp.windows.valid),
            soc.samples_dropped.eq(dropped),
        ]
        return m
