"""Joins the measurement path to the SoC: the DSP core (`crabwatt.dsp.PowerDsp`) with its
configuration registers and commit, window records into the result FIFO, the capture buffer
(`crabwatt.capture.CaptureBuffer`) on the calibrated pairs, the decimated waveform
(`crabwatt.dsp.Decimator`) into the SoC's waveform FIFO, and the health counters.

The result FIFO drops whole records instead of waiting, so the DSP's window stream is always ready
and the DSP never stalls (the DSP must never wait for the CPU or the link).
"""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In

from ..capture import CaptureBuffer
from ..dsp import Decimator, PowerDsp, SampleLayout

__all__ = ['DspLink']


class DspLink(wiring.Component):
    """`samples` come from the ADC front end (or the twin's harness) with their 64-bit index;
    `samples_dropped` and `adc_errors` are that source's counters, shown in the COUNTERS block.
    Call `attach(soc)` before elaboration."""

    samples: In(stream.Signature(SampleLayout()))
    samples_dropped: In(32)
    adc_errors: In(32)

    def __init__(self, *, capture_depth: int = 4096):
        self.capture_depth = capture_depth
        self._soc = None
        super().__init__()

    def attach(self, soc):
        self._soc = soc

    def elaborate(self, platform):
        if self._soc is None:
            raise RuntimeError('DspLink.attach(soc) was not called')
        soc = self._soc
        m = Module()
        m.submodules.dsp = dsp = PowerDsp()
        m.submodules.capture = cap = CaptureBuffer(depth=self.capture_depth)
        m.submodules.decimator = dec = Decimator()
        wiring.connect(m, wiring.flipped(self.samples), dsp.samples)
        m.d.comb += [
            dsp.staging.eq(soc.dsp_config), dsp.commit.eq(soc.dsp_commit),
            soc.dsp_config_seq.eq(dsp.config_seq), soc.dsp_commit_pending.eq(dsp.commit_pending),
            soc.sample_index.eq(dsp.next_index),
            dsp.windows.ready.eq(1),
            soc.window.eq(dsp.windows.payload), soc.window_valid.eq(dsp.windows.valid),
            soc.samples_dropped.eq(self.samples_dropped), soc.adc_errors.eq(self.adc_errors),

            dec.valid.eq(dsp.calibrated_valid), dec.v.eq(dsp.calibrated_y_v), dec.i.eq(dsp.calibrated_y_i),
            soc.wave_valid.eq(dec.out_valid), soc.wave_v.eq(dec.out_v), soc.wave_i.eq(dec.out_i),
            soc.wave_count.eq(dec.out_count),

            cap.sample.eq(dsp.calibrated), cap.sample_valid.eq(dsp.calibrated_valid),
            cap.pairs.eq(soc.capture_config.pairs), cap.trigger.eq(soc.capture_config.trigger),
            cap.level.eq(soc.capture_config.level), cap.pretrigger.eq(soc.capture_config.pretrigger),
            cap.decimation.eq(soc.capture_config.decimation), cap.hysteresis.eq(soc.capture_config.hysteresis),
            cap.arm.eq(soc.capture_arm),
            soc.capture_status.eq(Cat(cap.armed, cap.triggered, cap.done)),
            soc.capture_trigger_index.eq(cap.trigger_index), soc.capture_first_index.eq(cap.first_index),
            soc.capture_config_seq.eq(cap.config_seq),
            cap.read_addr.eq(soc.capture_read_addr), soc.capture_read_data.eq(cap.read_data),
        ]
        return m
