"""PowerDsp: ADC code pairs in, window records and calibrated pairs out (docs/dsp.md, all of it).

    samples --> [config commit] --> ChannelCalibrator x2 --> v^2, i^2, v*i (3 x MULT18X18D)
            --> zero-crossing detector --> window accumulators + 96-bit energy --> windows

Pipeline and latency: one sample per clock cycle at most. A sample accepted on `samples` at
clock edge t shows on `calibrated` after edge t + CALIBRATED_LATENCY - 1 and a window it closes
shows on `windows` after edge t + LATENCY - 1 (counting only edges where the pipeline advances). The pipeline stalls (as a
whole, `samples.ready` low) only while a window record is waiting for `windows.ready` and another
sample reaches the window stage, so a consumer that is always ready (the SoC's dropping result
FIFO) never stalls it. At 4 Msps and a 48 MHz system clock there are 12 cycles per sample.

Configuration: `staging` holds the registers as the CPU writes them. A `commit` strobe snapshots
them; the first sample accepted after that (the boundary b) and every later one uses the snapshot,
the window holding b-1 closes with CONFIG, and `config_seq` counts the commits applied.
`commit_pending` is high from the strobe until the boundary.

Used by: top.CrabwattTop (sample stream from adc.AdcCapture), capture.CaptureBuffer (via
`calibrated`), and the SoC's CSR block (staging/commit/config_seq/windows).
"""
from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from .layouts import (SampleLayout, ConfigLayout, CalibratedLayout, WindowLayout, CONFIG_RESET,
                      CODE_MID, CODE_MAX, ENERGY_BITS, MODE_CYCLES, FLAG_CLIP_V, FLAG_CLIP_I,
                      FLAG_SAT_V, FLAG_SAT_I, FLAG_PARTIAL, FLAG_TIMEOUT, FLAG_CONFIG,
                      FLAG_ZC_OVERFLOW)
from .calibrate import ChannelCalibrator


class PowerDsp(wiring.Component):
    """The whole DSP path of docs/dsp.md.

    Ports:
        samples:        raw code pairs with their 64-bit index (stream; ready low while stalled).
        staging:        configuration registers as written by software.
        commit:         strobe: apply `staging` at the next sample boundary.
        commit_pending: a commit waits for its sample boundary.
        config_seq:     commits applied so far (what new windows carry).
        next_index:     index of the next sample to enter (0 until the first sample arrives).
        energy:         E, 96-bit signed, over every sample that has left the pipeline.
        windows:        closed windows with the energy at their end (stream).
        calibrated:     every calibrated pair (v, i) with its index and config_seq, valid for the
                        one cycle `calibrated_valid` is high (no back-pressure).
    """
    LATENCY = ChannelCalibrator.LATENCY + 2          # accepted -> window record out
    CALIBRATED_LATENCY = ChannelCalibrator.LATENCY  # accepted -> calibrated pair out

    samples: In(stream.Signature(SampleLayout()))
    staging: In(ConfigLayout(), init=CONFIG_RESET)
    commit: In(1)
    commit_pending: Out(1)
    config_seq: Out(16)
    next_index: Out(64)
    energy: Out(signed(ENERGY_BITS))
    windows: Out(stream.Signature(WindowLayout()))
    calibrated: Out(CalibratedLayout())
    calibrated_valid: Out(1)

    def __init__(self, reset_config=None):
        """reset_config: the configuration in force from reset with config_seq 0 (docs/dsp.md's
        reset values unless given; tests use it to start from a vector's configuration)."""
        self._reset_config = dict(CONFIG_RESET if reset_config is None else reset_config)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        accept = Signal()
        m.d.comb += [self.samples.ready.eq(en), accept.eq(self.samples.valid & en)]

        def stage(value, name, n=1):
            """`value` delayed by n pipeline advances (registers enabled by `en`)."""
            for k in range(n):
                reg = Signal.like(value, name=f"{name}_{k + 1}")
                with m.If(en):
                    m.d.sync += reg.eq(value)
                value = reg
            return value

        # ---- Stage 0: configuration boundary and code centring.
        # Several commits before one boundary all count in config_seq; the last one's values win.
        committed = Signal(ConfigLayout(), init=self._reset_config)
        active = Signal(ConfigLayout(), init=self._reset_config)
        waiting = Signal(16)            # commits not yet at a boundary
        m.d.comb += self.commit_pending.eq(waiting != 0)
        with m.If(self.commit):
            m.d.sync += committed.eq(self.staging)
        cfg = Signal(ConfigLayout())
        change = Signal()
        m.d.comb += [
            change.eq(self.commit_pending),
            cfg.eq(Mux(self.commit_pending, committed, active)),
        ]
        seq = Signal(16)
        m.d.comb += seq.eq(self.config_seq + waiting)
        with m.If(accept):
            m.d.sync += self.next_index.eq(self.samples.payload.index + 1)
            with m.If(self.commit_pending):
                m.d.sync += [active.eq(committed), self.config_seq.eq(seq)]
            # A strobe in the boundary cycle itself waits for the next boundary.
            m.d.sync += waiting.eq(self.commit)
        with m.Elif(self.commit):
            m.d.sync += waiting.eq(waiting + 1)

        cv, ci = self.samples.payload.cv, self.samples.payload.ci
        phase = cfg.phase
        mag = Signal(32)
        m.d.comb += mag.eq(Mux(phase < 0, -phase, phase))
        d, f = mag[16:26], mag[:16]

        m.submodules.cal_v = cal_v = ChannelCalibrator()
        m.submodules.cal_i = cal_i = ChannelCalibrator()
        for cal, code, late, offset, gain in (
                (cal_v, cv, phase < 0, cfg.v_offset, cfg.v_gain),
                (cal_i, ci, phase > 0, cfg.i_offset, cfg.i_gain)):
            m.d.comb += [
                cal.en.eq(en), cal.write.eq(accept),
                cal.x0.eq(code - CODE_MID),
                cal.index.eq(self.samples.payload.index),
                cal.delay.eq(Mux(late, d, 0)), cal.frac.eq(Mux(late, f, 0)),
                cal.offset.eq(offset), cal.gain.eq(gain),
            ]

        L = ChannelCalibrator.LATENCY
        valid0 = accept
        clip0 = Cat(((cv == 0) | (cv == CODE_MAX)), ((ci == 0) | (ci == CODE_MAX)))
        # Everything the later stages need rides along with the sample.
        v6 = stage(valid0, "valid", L)
        change6 = stage(change, "change", L)
        seq6 = stage(seq, "seq", L)
        index6 = stage(self.samples.payload.index, "index", L)
        clip6 = stage(clip0, "clip", L)
        hyst6 = stage(cfg.zc_hysteresis, "hyst", L)
        wcfg0 = Cat(cfg.mode, cfg.cycles, cfg.fixed_samples, cfg.max_samples)
        wcfg6 = stage(wcfg0, "wcfg", L)

        v, i = cal_v.y, cal_i.y
        m.d.comb += [
            self.calibrated_valid.eq(v6 & en),
            self.calibrated.v.eq(v),
            self.calibrated.i.eq(i),
            self.calibrated.index.eq(index6),
            self.calibrated.config_seq.eq(seq6),
        ]

        # ---- Stage 6: zero-crossing detector (docs/dsp.md), products into multipliers.
        armed = Signal()
        prev_v = Signal(signed(16))
        armed_now = Signal()
        zc = Signal()
        m.d.comb += [
            armed_now.eq(armed & ~change6),
            zc.eq(armed_now & (v >= 0)),
        ]
        with m.If(en & v6):
            m.d.sync += [
                armed.eq(Mux(zc, 0, armed_now | (v < -hyst6))),
                prev_v.eq(v),
            ]
        s7 = {}
        for name, value in (("valid", v6), ("change", change6), ("seq", seq6), ("index", index6),
                            ("wcfg", wcfg6), ("v", v), ("i", i), ("zc", zc), ("zc_prev", prev_v),
                            ("flags", Cat(clip6, cal_v.sat, cal_i.sat)),
                            ("vv", v * v), ("ii", i * i), ("vi", v * i)):
            s7[name] = stage(value, "s7_" + name)
        mode = s7["wcfg"][0]
        cycles = s7["wcfg"][1:11]
        fixed_n = s7["wcfg"][11:36]
        max_m = s7["wcfg"][36:61]

        # ---- Stage 7: windows and energy.
        w_samples = Signal(25)
        w_sum_v = Signal(signed(41))
        w_sum_i = Signal(signed(41))
        w_sum_vv = Signal(56)
        w_sum_ii = Signal(56)
        w_sum_vi = Signal(signed(56))
        w_min_v = Signal(signed(16))
        w_max_v = Signal(signed(16))
        w_min_i = Signal(signed(16))
        w_max_i = Signal(signed(16))
        w_zc_count = Signal(16)
        w_zc_first = Signal(Cat(Signal(32), Signal(16), Signal(16)).shape())
        w_zc_last = Signal.like(w_zc_first)
        w_flags = Signal(16)
        w_start_zc = Signal()        # the window began on a crossing ("synchronised")
        w_seq = Signal(16)
        w_cycles_mode = Signal()     # the window's samples were taken in CYCLES mode
        energy = self.energy

        def record(rec, end_index, energy_value, extra_flags):
            return [
                rec.end_index.eq(end_index),
                rec.samples.eq(w_samples),
                rec.sum_v.eq(w_sum_v), rec.sum_i.eq(w_sum_i),
                rec.sum_vv.eq(w_sum_vv), rec.sum_ii.eq(w_sum_ii), rec.sum_vi.eq(w_sum_vi),
                rec.min_v.eq(w_min_v), rec.max_v.eq(w_max_v),
                rec.min_i.eq(w_min_i), rec.max_i.eq(w_max_i),
                rec.zc_count.eq(w_zc_count),
                Cat(rec.zc_first_offset, rec.zc_first_prev, rec.zc_first_cur).eq(w_zc_first),
                Cat(rec.zc_last_offset, rec.zc_last_prev, rec.zc_last_cur).eq(w_zc_last),
                rec.flags.eq(w_flags | extra_flags),
                rec.config_seq.eq(w_seq),
                rec.energy.eq(energy_value),
            ]

        # Two record slots: a sample can close the window before it and then, alone, a window
        # of its own (limit 1), so up to two records leave in one sample.
        out = Signal(WindowLayout())
        out_valid = Signal()
        pend = Signal(WindowLayout())
        pend_valid = Signal()
        m.d.comb += [self.windows.payload.eq(out), self.windows.valid.eq(out_valid)]
        drain = self.windows.valid & self.windows.ready
        m.d.comb += en.eq(~s7["valid"] | (~pend_valid & (~out_valid | drain)))
        with m.If(drain):
            m.d.sync += [out.eq(pend), out_valid.eq(pend_valid), pend_valid.eq(0)]

        n_zc, n_v, n_i = s7["zc"], s7["v"], s7["i"]
        nonempty = w_samples != 0
        by_crossing = (mode == MODE_CYCLES) & n_zc & ((w_zc_count == cycles) | ~w_start_zc)
        close_before = Signal()
        m.d.comb += close_before.eq(nonempty & (s7["change"] | by_crossing))
        # A CYCLES window that did not begin on a crossing is PARTIAL however it closes.
        before_flags = Signal(16)
        m.d.comb += before_flags.eq(Mux(s7["change"], FLAG_CONFIG, 0)
                                    | Mux(w_cycles_mode & ~w_start_zc, FLAG_PARTIAL, 0))

        # The window as it stands after adding this sample ("fresh" when the sample opens it).
        fresh = ~nonempty | close_before
        a_samples = Signal(25)
        a_sum_v = Signal.like(w_sum_v)
        a_sum_i = Signal.like(w_sum_i)
        a_sum_vv = Signal.like(w_sum_vv)
        a_sum_ii = Signal.like(w_sum_ii)
        a_sum_vi = Signal.like(w_sum_vi)
        a_min_v = Signal.like(w_min_v)
        a_max_v = Signal.like(w_max_v)
        a_min_i = Signal.like(w_min_i)
        a_max_i = Signal.like(w_max_i)
        a_zc_count = Signal.like(w_zc_count)
        a_zc_first = Signal.like(w_zc_first)
        a_zc_last = Signal.like(w_zc_last)
        a_flags = Signal(16)
        a_start_zc = Signal()
        offset_now = Signal(32)
        m.d.comb += offset_now.eq(Mux(fresh, 0, w_samples))
        crossing = Cat(offset_now, s7["zc_prev"], n_v)
        zc_saturated = ~fresh & (w_zc_count == 0xFFFF)
        with m.If(fresh):
            m.d.comb += [
                a_samples.eq(1), a_sum_v.eq(n_v), a_sum_i.eq(n_i),
                a_sum_vv.eq(s7["vv"]), a_sum_ii.eq(s7["ii"]), a_sum_vi.eq(s7["vi"]),
                a_min_v.eq(n_v), a_max_v.eq(n_v), a_min_i.eq(n_i), a_max_i.eq(n_i),
                a_zc_count.eq(n_zc), a_zc_first.eq(Mux(n_zc, crossing, 0)),
                a_zc_last.eq(Mux(n_zc, crossing, 0)),
                a_flags.eq(s7["flags"]), a_start_zc.eq(n_zc),
            ]
        with m.Else():
            m.d.comb += [
                a_samples.eq(w_samples + 1),
                a_sum_v.eq(w_sum_v + n_v), a_sum_i.eq(w_sum_i + n_i),
                a_sum_vv.eq(w_sum_vv + s7["vv"]), a_sum_ii.eq(w_sum_ii + s7["ii"]),
                a_sum_vi.eq(w_sum_vi + s7["vi"]),
                a_min_v.eq(Mux(n_v < w_min_v, n_v, w_min_v)),
                a_max_v.eq(Mux(n_v > w_max_v, n_v, w_max_v)),
                a_min_i.eq(Mux(n_i < w_min_i, n_i, w_min_i)),
                a_max_i.eq(Mux(n_i > w_max_i, n_i, w_max_i)),
                a_zc_count.eq(Mux(n_zc & ~zc_saturated, w_zc_count + 1, w_zc_count)),
                a_zc_first.eq(Mux(n_zc & (w_zc_count == 0), crossing, w_zc_first)),
                a_zc_last.eq(Mux(n_zc, crossing, w_zc_last)),
                a_flags.eq(w_flags | s7["flags"] | Mux(n_zc & zc_saturated, FLAG_ZC_OVERFLOW, 0)),
                a_start_zc.eq(w_start_zc),
            ]
        limit = Mux(mode == MODE_CYCLES, max_m, fixed_n)
        close_after = Signal()
        m.d.comb += close_after.eq(a_samples == limit)
        energy_after = Signal.like(energy)
        m.d.comb += energy_after.eq(energy + s7["vi"])

        with m.If(en & s7["valid"]):
            m.d.sync += energy.eq(energy_after)
            # Records: `before` first, then `after`; the slots are free when en is high.
            rec_before = Signal(WindowLayout())
            m.d.comb += record(rec_before, s7["index"], energy, before_flags)
            rec_after = Signal(WindowLayout())
            m.d.comb += [
                rec_after.end_index.eq(s7["index"] + 1),
                rec_after.samples.eq(a_samples),
                rec_after.sum_v.eq(a_sum_v), rec_after.sum_i.eq(a_sum_i),
                rec_after.sum_vv.eq(a_sum_vv), rec_after.sum_ii.eq(a_sum_ii),
                rec_after.sum_vi.eq(a_sum_vi),
                rec_after.min_v.eq(a_min_v), rec_after.max_v.eq(a_max_v),
                rec_after.min_i.eq(a_min_i), rec_after.max_i.eq(a_max_i),
                rec_after.zc_count.eq(a_zc_count),
                Cat(rec_after.zc_first_offset, rec_after.zc_first_prev,
                    rec_after.zc_first_cur).eq(a_zc_first),
                Cat(rec_after.zc_last_offset, rec_after.zc_last_prev,
                    rec_after.zc_last_cur).eq(a_zc_last),
                rec_after.flags.eq(a_flags | Mux(mode == MODE_CYCLES, FLAG_TIMEOUT, 0)
                                   | Mux((mode == MODE_CYCLES) & ~a_start_zc, FLAG_PARTIAL, 0)),
                rec_after.config_seq.eq(s7["seq"]),
                rec_after.energy.eq(energy_after),
            ]
            with m.If(close_before & close_after):
                m.d.sync += [out.eq(rec_before), out_valid.eq(1), pend.eq(rec_after), pend_valid.eq(1)]
            with m.Elif(close_before):
                m.d.sync += [out.eq(rec_before), out_valid.eq(1)]
            with m.Elif(close_after):
                m.d.sync += [out.eq(rec_after), out_valid.eq(1)]

            m.d.sync += [
                w_samples.eq(Mux(close_after, 0, a_samples)),
                w_sum_v.eq(a_sum_v), w_sum_i.eq(a_sum_i),
                w_sum_vv.eq(a_sum_vv), w_sum_ii.eq(a_sum_ii), w_sum_vi.eq(a_sum_vi),
                w_min_v.eq(a_min_v), w_max_v.eq(a_max_v), w_min_i.eq(a_min_i), w_max_i.eq(a_max_i),
                w_zc_count.eq(a_zc_count), w_zc_first.eq(a_zc_first), w_zc_last.eq(a_zc_last),
                w_flags.eq(a_flags), w_start_zc.eq(a_start_zc), w_seq.eq(s7["seq"]),
                w_cycles_mode.eq(mode == MODE_CYCLES),
            ]
        return m
