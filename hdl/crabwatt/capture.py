"""CaptureBuffer: a raw snapshot of calibrated (v, i) pairs in block RAM, for the waveform view.

Software sets `pairs` (P), `trigger`, `level`, `pretrigger` (Q) and strobes `arm` (which also aborts
a capture in progress). The buffer then records every calibrated pair into a ring:

  1. ARMED: waits until Q pairs of history are in the ring, then for the trigger: immediately
     (IMMEDIATE), or when the chosen channel crosses `level` between two consecutive pairs:
     rising = previous < level <= current; falling = previous >= level > current.
  2. TRIGGERED: records the trigger pair and the P - Q - 1 pairs after it.
  3. DONE: the ring holds Q pairs before the trigger and P - Q from it on. `read_addr` 0 is the
     oldest; `read_data` shows that pair one cycle after `read_addr` changes.

Out-of-range settings are clamped (P to 1..depth, Q to P - 1); the firmware rejects them first.
`first_index` is trigger_index - Q: exact unless samples were dropped during the capture (the
SAMPLES_DROPPED counter tells). `config_seq` is that of the trigger pair.

Latency: a pair presented with `sample_valid` is in the ring at the next clock edge.
Block RAM: depth x 32 bits (4096 pairs = 8 EBR).
"""
from amaranth import *
from amaranth.lib import wiring, memory, data
from amaranth.lib.wiring import In, Out

from .dsp.layouts import CalibratedLayout

TRIGGER_IMMEDIATE = 0
TRIGGER_V_RISING = 1
TRIGGER_V_FALLING = 2
TRIGGER_I_RISING = 3
TRIGGER_I_FALLING = 4


class PairLayout(data.StructLayout):
    def __init__(self):
        super().__init__({"v": signed(16), "i": signed(16)})


class CaptureBuffer(wiring.Component):
    """Triggered raw capture with pretrigger.

    Ports:
        sample, sample_valid: calibrated pairs from PowerDsp (one per cycle at most).
        pairs, trigger, level, pretrigger: settings, read at `arm` (CAPTURE_TRIGGER encoding).
        arm:            strobe: start a capture.
        armed, triggered, done: state (at most one high).
        trigger_index, first_index: sample indices of the trigger pair and the oldest pair.
        config_seq:     configuration of the trigger pair.
        read_addr, read_data: random access to the result, 0 = oldest.
    """
    def __init__(self, depth=4096):
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"capture depth must be a power of two >= 2, not {depth}")
        self.depth = depth
        abits = (depth - 1).bit_length()
        super().__init__({
            "sample": In(CalibratedLayout()),
            "sample_valid": In(1),
            "pairs": In(16),
            "trigger": In(3),
            "level": In(signed(16)),
            "pretrigger": In(16),
            "arm": In(1),
            "armed": Out(1),
            "triggered": Out(1),
            "done": Out(1),
            "trigger_index": Out(64),
            "first_index": Out(64),
            "config_seq": Out(16),
            "read_addr": In(16),
            "read_data": Out(PairLayout()),
        })
        self._abits = abits

    def elaborate(self, platform):
        m = Module()
        depth, abits = self.depth, self._abits
        m.submodules.ring = ring = memory.Memory(shape=PairLayout(), depth=depth, init=[])
        wr = ring.write_port()
        rd = ring.read_port(domain="sync")

        n_pairs = Signal(range(depth + 1))
        n_pre = Signal(range(depth))
        trig_mode = Signal(3)
        level = Signal(signed(16))
        waddr = Signal(abits)
        history = Signal(range(depth + 1))     # pairs recorded since arming (saturating at Q)
        remaining = Signal(range(depth + 1))   # pairs still to record after the trigger
        oldest = Signal(abits)
        have_prev = Signal()
        prev = Signal(PairLayout())

        s = self.sample
        m.d.comb += [
            wr.addr.eq(waddr),
            wr.data.v.eq(s.v),
            wr.data.i.eq(s.i),
            rd.addr.eq(oldest + self.read_addr[:abits]),
        ]
        m.d.comb += self.read_data.eq(rd.data)

        chan_prev = Mux(trig_mode <= TRIGGER_V_FALLING, prev.v, prev.i)
        chan_cur = Mux(trig_mode <= TRIGGER_V_FALLING, s.v, s.i)
        rising = (chan_prev < level) & (chan_cur >= level)
        falling = (chan_prev >= level) & (chan_cur < level)
        fire = Signal()
        m.d.comb += fire.eq(
            (history >= n_pre) & (
                (trig_mode == TRIGGER_IMMEDIATE)
                | (have_prev & Mux((trig_mode == TRIGGER_V_RISING) | (trig_mode == TRIGGER_I_RISING),
                                   rising, falling))))

        with m.If(self.arm):
            pairs_clamped = Mux(self.pairs == 0, 1, Mux(self.pairs > depth, depth, self.pairs))
            m.d.sync += [
                n_pairs.eq(pairs_clamped),
                n_pre.eq(Mux(self.pretrigger >= pairs_clamped, pairs_clamped - 1, self.pretrigger)),
                trig_mode.eq(Mux(self.trigger > TRIGGER_I_FALLING, TRIGGER_IMMEDIATE, self.trigger)),
                level.eq(self.level),
                history.eq(0), have_prev.eq(0),
                self.armed.eq(1), self.triggered.eq(0), self.done.eq(0),
            ]
        with m.Elif(self.sample_valid & (self.armed | self.triggered)):
            m.d.comb += wr.en.eq(1)
            m.d.sync += [waddr.eq(waddr + 1), prev.v.eq(s.v), prev.i.eq(s.i), have_prev.eq(1)]
            with m.If(self.armed):
                with m.If(history < n_pre):
                    m.d.sync += history.eq(history + 1)
                with m.If(fire):
                    m.d.sync += [
                        self.armed.eq(0),
                        self.trigger_index.eq(s.index),
                        self.first_index.eq(s.index - n_pre),
                        self.config_seq.eq(s.config_seq),
                        oldest.eq(waddr - n_pre),
                    ]
                    with m.If(n_pairs - n_pre == 1):
                        m.d.sync += self.done.eq(1)
                    with m.Else():
                        m.d.sync += [self.triggered.eq(1), remaining.eq(n_pairs - n_pre - 1)]
            with m.Else():
                m.d.sync += remaining.eq(remaining - 1)
                with m.If(remaining == 1):
                    m.d.sync += [self.triggered.eq(0), self.done.eq(1)]
        return m
