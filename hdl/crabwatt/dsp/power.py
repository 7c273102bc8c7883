"""PowerDsp: ADC code pairs in, window records and calibrated pairs out (docs/dsp.md, all of it).

    samples --> [config commit] --> ChannelCalibrator x2 --> v^2, i^2, v*i (3 x MULT18X18D, 18 x 18)
            --> zero-crossing detector --> window prepare --> window commit + 96-bit energy
            --> windows

Pipeline and latency: one sample every other clock cycle at most (24 Msps at 48 MHz, six times
the ADC's rate), which gives the window stage two cycles per sample. A sample accepted on `samples` at
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
from amaranth.lib import data, wiring, stream
from amaranth.lib.wiring import In, Out

from .layouts import (Y_BITS, SampleLayout, ConfigLayout, CalibratedLayout, WindowLayout, CONFIG_RESET,
                      CODE_MID, CODE_MAX, ENERGY_BITS, MODE_CYCLES, Y_LSB_SHIFT, FLAG_CLIP_V, FLAG_CLIP_I,
                      FLAG_SAT_V, FLAG_SAT_I, FLAG_PARTIAL, FLAG_TIMEOUT, FLAG_CONFIG,
                      FLAG_ZC_OVERFLOW)
from .calibrate import ChannelCalibrator

# The delay the phase register gives each channel (docs/dsp.md): |phase| in 1/65536 sample, on V when
# phase < 0 (voltage delayed), on I when phase > 0.
_ChannelDelay = data.StructLayout({"whole": 10, "frac": 16})
DelayLayout = data.StructLayout({"v": _ChannelDelay, "i": _ChannelDelay})


def _delays(phase: int) -> dict:
    """The delays of a phase known at elaboration (a reset value), as hardware works them out."""
    mag = abs(phase) & 0xFFFFFFFF
    delay = {"whole": (mag >> 16) & 0x3FF, "frac": mag & 0xFFFF}
    zero = {"whole": 0, "frac": 0}
    return {"v": delay if phase < 0 else zero, "i": delay if phase > 0 else zero}


def _delay_logic(m, phase):
    """The delays of a phase signal (comb logic in `m`)."""
    mag = Signal(32)
    out = Signal(DelayLayout)
    m.d.comb += mag.eq(Mux(phase < 0, -phase, phase))
    for channel, late in ((out.v, phase < 0), (out.i, phase > 0)):
        m.d.comb += [channel.whole.eq(Mux(late, mag[16:26], 0)), channel.frac.eq(Mux(late, mag[:16], 0))]
    return out


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
                        one cycle `calibrated_valid` is high (no back-pressure). In whole ADC LSB
                        (y >> 2): the windows use the quarter-LSB y, the capture keeps 16 bits.
        calibrated_y_v, calibrated_y_i: the same pair in q (y, 18 bit), for the decimator.
    """
    LATENCY = ChannelCalibrator.LATENCY + 3          # accepted -> window record out
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
    calibrated_y_v: Out(signed(Y_BITS))
    calibrated_y_i: Out(signed(Y_BITS))

    def __init__(self, reset_config=None):
        """reset_config: the configuration in force from reset with config_seq 0 (docs/dsp.md's
        reset values unless given; tests use it to start from a vector's configuration)."""
        self._reset_config = dict(CONFIG_RESET if reset_config is None else reset_config)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        accept = Signal()
        accepted_last = Signal()   # stage 1 holds a sample: wait a cycle (see stage 7)
        m.d.comb += [self.samples.ready.eq(en & ~accepted_last),
                     accept.eq(self.samples.valid & self.samples.ready)]
        with m.If(en):
            m.d.sync += accepted_last.eq(accept)

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
        pending = Signal()              # waiting != 0, as a register: the delay lines' addresses hang off it
        m.d.comb += self.commit_pending.eq(pending)
        # Each channel's delay (whole samples, 1/65536 fractions) from the phase register, worked out when a
        # configuration is committed rather than from the one in force each cycle: |phase| and the choice of
        # channel would otherwise sit between `pending` and the delay lines' read addresses (the sys
        # domain's critical path in the SoC).
        delays = Signal(DelayLayout, init=_delays(self._reset_config['phase']))
        committed_delays = Signal(DelayLayout, init=_delays(self._reset_config['phase']))
        with m.If(self.commit):
            m.d.sync += [committed.eq(self.staging), committed_delays.eq(_delay_logic(m, self.staging.phase))]
        cfg = Signal(ConfigLayout())
        cfg_delays = Signal(DelayLayout)
        change = Signal()
        m.d.comb += [
            change.eq(pending),
            cfg.eq(Mux(pending, committed, active)),
            cfg_delays.eq(Mux(pending, committed_delays, delays)),
        ]
        seq = Signal(16)
        m.d.comb += seq.eq(self.config_seq + waiting)
        with m.If(accept):
            m.d.sync += self.next_index.eq(self.samples.payload.index + 1)
            with m.If(pending):
                m.d.sync += [active.eq(committed), delays.eq(committed_delays), self.config_seq.eq(seq)]
            # A strobe in the boundary cycle itself waits for the next boundary.
            m.d.sync += [waiting.eq(self.commit), pending.eq(self.commit)]
        with m.Elif(self.commit):
            m.d.sync += [waiting.eq(waiting + 1), pending.eq(1)]

        cv, ci = self.samples.payload.cv, self.samples.payload.ci

        m.submodules.cal_v = cal_v = ChannelCalibrator()
        m.submodules.cal_i = cal_i = ChannelCalibrator()
        for cal, code, delay, offset, gain in (
                (cal_v, cv, cfg_delays.v, cfg.v_offset, cfg.v_gain),
                (cal_i, ci, cfg_delays.i, cfg.i_offset, cfg.i_gain)):
            m.d.comb += [
                cal.en.eq(en), cal.write.eq(accept),
                cal.x0.eq(code - CODE_MID),
                cal.index.eq(self.samples.payload.index),
                cal.delay.eq(delay.whole), cal.frac.eq(delay.frac),
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

        # v, i: quarter-LSB (18 bit) for the detector, the products and the sums; vq, iq: whole LSB
        # (y >> 2, floor, 16 bit) for what is recorded as a sample: extremes, crossings, capture.
        v, i = cal_v.y, cal_i.y
        vq, iq = v >> Y_LSB_SHIFT, i >> Y_LSB_SHIFT
        m.d.comb += [
            self.calibrated_valid.eq(v6 & en),
            self.calibrated.v.eq(vq),
            self.calibrated.i.eq(iq),
            self.calibrated.index.eq(index6),
            self.calibrated.config_seq.eq(seq6),
            self.calibrated_y_v.eq(v),
            self.calibrated_y_i.eq(i),
        ]

        # ---- Stage 6: zero-crossing detector (docs/dsp.md), products into multipliers.
        # The detector compares the quarter-LSB v with the hysteresis register (ADC LSB) times 4.
        armed = Signal()
        prev_v = Signal(signed(16))     # the previous sample's vq, as a crossing records it
        armed_now = Signal()
        zc = Signal()
        m.d.comb += [
            armed_now.eq(armed & ~change6),
            zc.eq(armed_now & (v >= 0)),
        ]
        with m.If(en & v6):
            m.d.sync += [
                armed.eq(Mux(zc, 0, armed_now | (v < -(hyst6 << Y_LSB_SHIFT)))),
                prev_v.eq(vq),
            ]
        s7 = {}
        for name, value in (("valid", v6), ("change", change6), ("seq", seq6), ("index", index6),
                            ("wcfg", wcfg6), ("v", v), ("i", i), ("vq", vq), ("iq", iq),
                            ("zc", zc), ("zc_prev", prev_v),
                            ("flags", Cat(clip6, cal_v.sat, cal_i.sat)),
                            ("vv", v * v), ("ii", i * i), ("vi", v * i)):
            s7[name] = stage(value, "s7_" + name)
        mode = s7["wcfg"][0]
        cycles = s7["wcfg"][1:11]
        fixed_n = s7["wcfg"][11:36]
        max_m = s7["wcfg"][36:61]

        # ---- Stage 7 ("prepare") and stage 8 ("commit"): windows and energy.
        # Stage 7 computes, from the window state and the sample, every candidate of the next
        # state (the window continued, or opened afresh by this sample) and both close
        # decisions' inputs; stage 8 only selects and writes. Samples enter at most every other
        # cycle (see `samples.ready`), so stage 7 always sees the state stage 8 left behind.
        # Widths for 2^24 samples of |y| <= 2^17 (docs/dsp.md "Windows"): |sum_v| <= 2^41,
        # sum_vv <= 2^58, |sum_vi| <= 2^58.
        w_samples = Signal(25)
        w_sum_v = Signal(signed(42))
        w_sum_i = Signal(signed(42))
        w_sum_vv = Signal(59)
        w_sum_ii = Signal(59)
        w_sum_vi = Signal(signed(60))
        w_min_v = Signal(signed(16))
        w_max_v = Signal(signed(16))
        w_min_i = Signal(signed(16))
        w_max_i = Signal(signed(16))
        w_zc_count = Signal(16)
        crossing_shape = Cat(Signal(32), Signal(16), Signal(16)).shape()
        w_zc_first = Signal(crossing_shape)
        w_zc_last = Signal(crossing_shape)
        w_flags = Signal(16)
        w_start_zc = Signal()        # the window began on a crossing ("synchronised")
        w_seq = Signal(16)
        w_cycles_mode = Signal()     # the window's samples were taken in CYCLES mode
        energy = self.energy

        n_zc, n_v, n_i, n_vq, n_iq = s7["zc"], s7["v"], s7["i"], s7["vq"], s7["iq"]
        n_flags = s7["flags"]
        nonempty = w_samples != 0
        by_crossing = (mode == MODE_CYCLES) & n_zc & ((w_zc_count == cycles) | ~w_start_zc)
        limit = Mux(mode == MODE_CYCLES, max_m, fixed_n)
        zc_saturated = w_zc_count == 0xFFFF
        crossing_cont = Cat(w_samples, C(0, 7), s7["zc_prev"], n_vq)
        crossing_fresh = Cat(C(0, 32), s7["zc_prev"], n_vq)

        # What stage 8 needs, named as it uses it ("c_": the window continued, "f_": opened
        # afresh by this sample).
        prep = {
            "valid": s7["valid"], "change": s7["change"], "seq": s7["seq"], "index": s7["index"],
            "end_after": s7["index"] + 1, "cycles_mode": mode == MODE_CYCLES,
            "nonempty": nonempty,
            "close_before": nonempty & (s7["change"] | by_crossing),
            # A CYCLES window that did not begin on a crossing is PARTIAL however it closes.
            "before_flags": Mux(s7["change"], FLAG_CONFIG, 0)
                            | Mux(w_cycles_mode & ~w_start_zc, FLAG_PARTIAL, 0),
            "c_hits": (w_samples + 1) == limit, "f_hits": limit == 1,
            "energy_after": energy + s7["vi"],
            "v": n_v, "i": n_i, "vq": n_vq, "iq": n_iq,
            "vv": s7["vv"], "ii": s7["ii"], "vi": s7["vi"], "zc": n_zc,
            "flags": n_flags, "f_crossing": Mux(n_zc, crossing_fresh, 0),
            "c_samples": w_samples + 1,
            "c_sum_v": w_sum_v + n_v, "c_sum_i": w_sum_i + n_i,
            "c_sum_vv": w_sum_vv + s7["vv"], "c_sum_ii": w_sum_ii + s7["ii"],
            "c_sum_vi": w_sum_vi + s7["vi"],
            # Extremes over vq: floor is monotone, so min(y) >> 2 = min(y >> 2).
            "c_min_v": Mux(n_vq < w_min_v, n_vq, w_min_v), "c_max_v": Mux(n_vq > w_max_v, n_vq, w_max_v),
            "c_min_i": Mux(n_iq < w_min_i, n_iq, w_min_i), "c_max_i": Mux(n_iq > w_max_i, n_iq, w_max_i),
            "c_zc_count": Mux(n_zc & ~zc_saturated, w_zc_count + 1, w_zc_count),
            "c_zc_first": Mux(n_zc & (w_zc_count == 0), crossing_cont, w_zc_first),
            "c_zc_last": Mux(n_zc, crossing_cont, w_zc_last),
            "c_flags": w_flags | n_flags | Mux(n_zc & zc_saturated, FLAG_ZC_OVERFLOW, 0),
        }
        widths = {"c_sum_v": w_sum_v, "c_sum_i": w_sum_i, "c_sum_vv": w_sum_vv,
                  "c_sum_ii": w_sum_ii, "c_sum_vi": w_sum_vi, "c_samples": w_samples,
                  "c_zc_count": w_zc_count, "energy_after": energy, "end_after": s7["index"],
                  "before_flags": w_flags, "c_flags": w_flags}
        s8 = {}
        for name, value in prep.items():
            like = widths.get(name)
            reg = Signal.like(like, name="s8_" + name) if like is not None else \
                Signal.like(Value.cast(value), name="s8_" + name)
            with m.If(en):
                m.d.sync += reg.eq(value)
            s8[name] = reg

        def record(rec, fields):
            return [getattr(rec, name).eq(value) for name, value in fields.items()]

        # Two record slots: a sample can close the window before it and then, alone, a window
        # of its own (limit 1), so up to two records leave in one sample.
        out = Signal(WindowLayout())
        out_valid = Signal()
        pend = Signal(WindowLayout())
        pend_valid = Signal()
        m.d.comb += [self.windows.payload.eq(out), self.windows.valid.eq(out_valid)]
        drain = self.windows.valid & self.windows.ready
        m.d.comb += en.eq(~s8["valid"] | (~pend_valid & (~out_valid | drain)))
        with m.If(drain):
            m.d.sync += [out.eq(pend), out_valid.eq(pend_valid), pend_valid.eq(0)]

        fresh = ~s8["nonempty"] | s8["close_before"]
        a = {}
        for name, fresh_value in (
                ("samples", 1), ("sum_v", s8["v"]), ("sum_i", s8["i"]), ("sum_vv", s8["vv"]),
                ("sum_ii", s8["ii"]), ("sum_vi", s8["vi"]), ("min_v", s8["vq"]), ("max_v", s8["vq"]),
                ("min_i", s8["iq"]), ("max_i", s8["iq"]), ("zc_count", s8["zc"]),
                ("zc_first", s8["f_crossing"]), ("zc_last", s8["f_crossing"]),
                ("flags", s8["flags"])):
            cont = s8["c_" + name]
            sig = Signal.like(cont, name="a_" + name)
            m.d.comb += sig.eq(Mux(fresh, fresh_value, cont))
            a[name] = sig
        a_start_zc = Mux(fresh, s8["zc"], w_start_zc)
        close_after = Mux(fresh, s8["f_hits"], s8["c_hits"])

        def window_fields(src):
            return {
                "samples": src["samples"], "sum_v": src["sum_v"], "sum_i": src["sum_i"],
                "sum_vv": src["sum_vv"], "sum_ii": src["sum_ii"], "sum_vi": src["sum_vi"],
                "min_v": src["min_v"], "max_v": src["max_v"], "min_i": src["min_i"],
                "max_i": src["max_i"], "zc_count": src["zc_count"],
            }

        with m.If(en & s8["valid"]):
            m.d.sync += energy.eq(s8["energy_after"])
            rec_before = Signal(WindowLayout())
            state = {"samples": w_samples, "sum_v": w_sum_v, "sum_i": w_sum_i, "sum_vv": w_sum_vv,
                     "sum_ii": w_sum_ii, "sum_vi": w_sum_vi, "min_v": w_min_v, "max_v": w_max_v,
                     "min_i": w_min_i, "max_i": w_max_i, "zc_count": w_zc_count}
            m.d.comb += record(rec_before, dict(
                window_fields(state), end_index=s8["index"], flags=w_flags | s8["before_flags"],
                config_seq=w_seq, energy=energy))
            m.d.comb += Cat(rec_before.zc_first_offset, rec_before.zc_first_prev,
                            rec_before.zc_first_cur).eq(w_zc_first)
            m.d.comb += Cat(rec_before.zc_last_offset, rec_before.zc_last_prev,
                            rec_before.zc_last_cur).eq(w_zc_last)
            rec_after = Signal(WindowLayout())
            m.d.comb += record(rec_after, dict(
                window_fields(a), end_index=s8["end_after"],
                flags=a["flags"] | Mux(s8["cycles_mode"], FLAG_TIMEOUT, 0)
                      | Mux(s8["cycles_mode"] & ~a_start_zc, FLAG_PARTIAL, 0),
                config_seq=s8["seq"], energy=s8["energy_after"]))
            m.d.comb += Cat(rec_after.zc_first_offset, rec_after.zc_first_prev,
                            rec_after.zc_first_cur).eq(a["zc_first"])
            m.d.comb += Cat(rec_after.zc_last_offset, rec_after.zc_last_prev,
                            rec_after.zc_last_cur).eq(a["zc_last"])
            with m.If(s8["close_before"] & close_after):
                m.d.sync += [out.eq(rec_before), out_valid.eq(1), pend.eq(rec_after), pend_valid.eq(1)]
            with m.Elif(s8["close_before"]):
                m.d.sync += [out.eq(rec_before), out_valid.eq(1)]
            with m.Elif(close_after):
                m.d.sync += [out.eq(rec_after), out_valid.eq(1)]

            m.d.sync += [
                w_samples.eq(Mux(close_after, 0, a["samples"])),
                w_sum_v.eq(a["sum_v"]), w_sum_i.eq(a["sum_i"]),
                w_sum_vv.eq(a["sum_vv"]), w_sum_ii.eq(a["sum_ii"]), w_sum_vi.eq(a["sum_vi"]),
                w_min_v.eq(a["min_v"]), w_max_v.eq(a["max_v"]),
                w_min_i.eq(a["min_i"]), w_max_i.eq(a["max_i"]),
                w_zc_count.eq(a["zc_count"]), w_zc_first.eq(a["zc_first"]),
                w_zc_last.eq(a["zc_last"]),
                w_flags.eq(a["flags"]), w_start_zc.eq(a_start_zc), w_seq.eq(s8["seq"]),
                w_cycles_mode.eq(s8["cycles_mode"]),
            ]
        return m
