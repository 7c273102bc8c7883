"""docs/dsp.md "Decimated waveform": the calibrated pairs (q, 18 bit) filtered and decimated by 512.

    y --> 5 integrators (53 bit, wrapping; one adder per stage, v in a sample's cycle, i in the next)
      --> every 128 samples: 5 combs, time-multiplexed on one 53-bit subtractor (state in a small RAM)
      --> c = (C5 + 2^34) >> 35 into a 128-entry history per channel (block RAM)
      --> every 4th c from m = 67 on: the 127-tap FIR on one 18 x 18 multiplier, v then i
      --> w = (a + 2^18) >> 19, one (v, i) pair on `out` per 512 samples

Input spacing. A sample takes two cycles: each integrator stage has one adder and two registers,
`head` (the channel it adds next) and `tail`; a step adds into `tail` and swaps them, v in the cycle
`valid` is high and i in the next. That is why a `valid` must not come on the cycle after another: the
decimator refuses such a sample (it is not added) and sets the sticky `overrun`. It cannot happen in
the SoC: PowerDsp takes a sample only when it took none on its previous pipeline advance
(`samples.ready` = `en & ~accepted_last`), and `calibrated_valid` is that accept moved through
registers that all advance together (on `en`) and gated by `en`, so two calibrated pairs are at least
two cycles apart however the pipeline stalls (an ADC sample it cannot take is dropped and counted by
the source, not queued). On the board a pair comes every ~12 cycles, in the RTL twin every 2.

The integrators are registered one after the other (each adds the previous stage's register for the
same channel, which `head` holds in both of the sample's cycles), so once sample n has been taken
the fifth holds docs/dsp.md's I5[n - 4] for v (`head`) and i (`tail`); the combs read it in the
cycle after sample 128*m + 131's i step. Nothing else differs from the doc. The FIR (2 x 127
multiply-adds plus a few cycles) and the combs (11 cycles) must finish before they are next needed:
512 and 128 samples later, i.e. at least 1024 and 256 cycles.
"""
from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .layouts import Y_BITS

CIC_ORDER = 5
CIC_DECIMATION = 128
CIC_SHIFT = 35
CIC_BITS = Y_BITS + CIC_SHIFT                # 53: the CIC's exact output range
FIR_DECIMATION = 4
FIR_SHIFT = 19
FIRST_OUTPUT_CIC = 67
# docs/dsp.md; hdl/tests/dsp/test_decimator.py checks them against the vectors' copy.
FIR_HALF_TAPS = (
    -1, -2, -2, 0, 5, 11, 10, 0, -19, -34, -31, 0, 49, 86, 74, 0, -110, -186, -156, 1, 219, 362, 298, -1,
    -401, -652, -528, 2, 689, 1103, 881, -2, -1122, -1778, -1406, 3, 1757, 2762, 2168, -4, -2672, -4179,
    -3266, 5, 3999, 6246, 4880, -6, -5995, -9405, -7397, 7, 9279, 14798, 11891, -8, -15902, -26641,
    -22900, 8, 38920, 83045, 117859, 131066,
)
FIR_TAPS = FIR_HALF_TAPS + FIR_HALF_TAPS[-2::-1]
FIR_LENGTH = len(FIR_TAPS)                   # 127
ACC_BITS = 38
W_BITS = 19
DECIMATED_FIRST_INDEX = 322
DECIMATION = CIC_DECIMATION * FIR_DECIMATION
INTEGRATOR_LAG = CIC_ORDER - 1               # samples the registered chain lags the doc's I5


class Decimator(wiring.Component):
    """Ports:
        valid:      a calibrated pair is on `v`, `i` this cycle; never on the cycle after another
                    (such a pair is refused and sets `overrun`).
        v, i:       calibrated samples, q (18-bit signed), sample n = number of earlier taken pairs.
        overrun:    sticky: a pair came on the cycle after another and was refused (not added).
        out_valid:  one cycle per stream sample; `out_v`, `out_i` (q, 19-bit signed) hold it then.
        out_count:  stream samples emitted before the current one (j; it represents 322 + 512*j).
                    48 bits because the WAVEFORM COUNT registers, read by the firmware, are.
    """
    valid: In(1)
    v: In(signed(Y_BITS))
    i: In(signed(Y_BITS))
    overrun: Out(1)
    out_valid: Out(1)
    out_v: Out(signed(W_BITS))
    out_i: Out(signed(W_BITS))
    out_count: Out(48)

    def elaborate(self, platform):
        m = Module()

        # ---- Integrators: one adder per stage, shared by v (cycle of `valid`) and i (the next).
        head = [Signal(CIC_BITS, name=f"int_head_{k}") for k in range(CIC_ORDER)]
        tail = [Signal(CIC_BITS, name=f"int_tail_{k}") for k in range(CIC_ORDER)]
        i_turn = Signal()           # this cycle adds the i of the pair taken in the previous one
        i_held = Signal(signed(Y_BITS))
        take = Signal()
        m.d.comb += take.eq(self.valid & ~i_turn)
        m.d.sync += [i_turn.eq(take), i_held.eq(self.i)]
        with m.If(self.valid & i_turn):
            m.d.sync += self.overrun.eq(1)
        with m.If(take | i_turn):
            y = Mux(i_turn, i_held, self.v)
            for k in range(CIC_ORDER):
                m.d.sync += [head[k].eq(tail[k]),
                             tail[k].eq(head[k] + (y.as_signed() if k == 0 else head[k - 1]))]
        phase = Signal(range(CIC_DECIMATION))   # n mod 128 of the next sample
        comb_go = Signal()
        started = Signal()
        m.d.sync += comb_go.eq(0)
        with m.If(take):
            m.d.sync += phase.eq(phase + 1)
            with m.If(phase == CIC_DECIMATION - 1):
                m.d.sync += started.eq(1)
        # After sample 128m + 131's i step the last stage holds the doc's I5[128m + 127]; sample 3
        # (before any sample 127) is not such a moment. `phase` already counts the sample then.
        with m.If(i_turn & started & (phase == INTEGRATOR_LAG)):
            m.d.sync += comb_go.eq(1)

        # ---- Combs, time-multiplexed: x runs through the 5 stages of channel v, then of i.
        m.submodules.delays = delays = memory.Memory(shape=CIC_BITS, depth=2 * CIC_ORDER, init=[])
        d_rd = delays.read_port(domain="comb")
        d_wr = delays.write_port()
        x = Signal(CIC_BITS)
        snap_i = Signal(CIC_BITS)
        step = Signal(range(2 * CIC_ORDER + 1))
        comb_busy = Signal()
        c_valid = Signal()          # a new c pair is written this cycle
        # m, the CIC outputs formed so far, as the history address (m mod 128) and whether the
        # history is full (m >= 128): all the FIR needs of it, since 128 is a multiple of 4.
        c_addr = Signal(7)
        c_full = Signal()
        diff = Signal(CIC_BITS)
        m.d.comb += [d_rd.addr.eq(step), d_wr.addr.eq(step), d_wr.data.eq(x),
                     diff.eq(x - d_rd.data)]
        m.submodules.hist = hist = memory.Memory(shape=signed(Y_BITS), depth=2 * CIC_DECIMATION, init=[])
        h_wr = hist.write_port()
        rounded = Signal(signed(Y_BITS))
        # (d + 2^34) >> 35 = ((d >> 34) + 1) >> 1: the bits below 34 cannot carry into the kept ones.
        m.d.comb += [rounded.eq((diff[CIC_SHIFT - 1:].as_signed() + 1) >> 1),
                     h_wr.data.eq(rounded),
                     h_wr.addr.eq(Cat(c_addr, step >= CIC_ORDER))]
        m.d.sync += c_valid.eq(0)
        with m.If(comb_go):
            m.d.sync += [x.eq(head[-1]), snap_i.eq(tail[-1]), step.eq(0), comb_busy.eq(1)]
        with m.Elif(comb_busy):
            m.d.comb += d_wr.en.eq(1)
            last = (step == CIC_ORDER - 1) | (step == 2 * CIC_ORDER - 1)
            m.d.comb += h_wr.en.eq(last)
            m.d.sync += [x.eq(Mux(step == CIC_ORDER - 1, snap_i, diff)), step.eq(step + 1)]
            with m.If(step == 2 * CIC_ORDER - 1):
                m.d.sync += [comb_busy.eq(0), c_valid.eq(1)]

        # ---- FIR: every 4th c from m = 67 on, v then i, one product per cycle.
        fir_due = Signal()
        m.d.comb += fir_due.eq(c_valid & (c_full | (c_addr >= FIRST_OUTPUT_CIC)) &
                               (c_addr[:2] == FIRST_OUTPUT_CIC % FIR_DECIMATION))
        with m.If(c_valid):
            m.d.sync += c_addr.eq(c_addr + 1)
            with m.If(c_addr == CIC_DECIMATION - 1):
                m.d.sync += c_full.eq(1)

        m.submodules.taps = taps = memory.Memory(shape=signed(Y_BITS), depth=FIR_LENGTH, init=FIR_TAPS)
        t_rd = taps.read_port(domain="sync")
        h_rd = hist.read_port(domain="sync")
        newest = Signal(7)           # history address of the c just written
        newest_full = Signal()       # c[newest - t] exists for every t
        t = Signal(range(FIR_LENGTH + 1))
        ch = Signal()
        running = Signal()
        # Pipeline: addresses (t) -> RAM outputs + "in range" -> product -> accumulate.
        p1_ok = Signal()
        p1_on = Signal()
        p2_prod = Signal(signed(2 * Y_BITS))
        p2_on = Signal()
        p2_first = Signal()
        p1_first = Signal()
        p1_last = Signal()
        p2_last = Signal()
        acc = Signal(signed(ACC_BITS))
        src = Signal(7)
        m.d.comb += [src.eq(newest - t),
                     t_rd.addr.eq(t), h_rd.addr.eq(Cat(src, ch))]
        with m.If(fir_due):
            m.d.sync += [newest.eq(c_addr), newest_full.eq(c_full), t.eq(0), ch.eq(0), running.eq(1)]
        with m.Elif(running):
            with m.If(t == FIR_LENGTH - 1):
                m.d.sync += [t.eq(0), ch.eq(~ch)]
                with m.If(ch):
                    m.d.sync += running.eq(0)
            with m.Else():
                m.d.sync += t.eq(t + 1)
        m.d.sync += [
            p1_on.eq(running),
            p1_ok.eq(newest_full | (t <= newest)),   # c[m - t] = 0 for m - t < 0
            p1_first.eq(t == 0),
            p1_last.eq(t == FIR_LENGTH - 1),
            p2_on.eq(p1_on),
            p2_first.eq(p1_first),
            p2_last.eq(p1_last),
            p2_prod.eq(Mux(p1_ok, h_rd.data, 0) * t_rd.data),
        ]
        w = Signal(signed(W_BITS))
        acc_next = Signal(signed(ACC_BITS))
        # As for c: (a + 2^18) >> 19 needs only a's bits from 18 up.
        m.d.comb += [acc_next.eq(Mux(p2_first, 0, acc) + p2_prod),
                     w.eq((acc_next[FIR_SHIFT - 1:].as_signed() + 1) >> 1)]
        v_done = Signal()
        m.d.sync += self.out_valid.eq(0)
        with m.If(p2_on):
            m.d.sync += acc.eq(acc_next)
            with m.If(p2_last):
                with m.If(~v_done):
                    m.d.sync += [self.out_v.eq(w), v_done.eq(1)]
                with m.Else():
                    m.d.sync += [self.out_i.eq(w), v_done.eq(0), self.out_valid.eq(1)]
        with m.If(self.out_valid):
            m.d.sync += self.out_count.eq(self.out_count + 1)
        return m
