"""CaptureBuffer: a raw snapshot of calibrated (v, i) pairs in block RAM, for the waveform view.

Software sets `pairs` (P), `decimation` (D), `trigger`, `level`, `hysteresis` (H), `pretrigger` (Q)
and strobes `arm` (which also aborts a capture in progress). From the first pair after `arm` on,
the buffer records every D-th calibrated pair (sample and hold: pairs 0, D, 2D, ... after arming)
into a ring; the trigger looks at the recorded pairs only:

  1. ARMED: waits until Q recorded pairs of history are in the ring, then for the trigger:
     immediately (IMMEDIATE), or when the chosen channel crosses `level` with hysteresis. A rising
     trigger is primed by a recorded pair below level - H, disarmed by one at or above level, and
     fires at the first recorded pair at or above level while primed; falling mirrors it (primed
     at or above level + H, fires below level). With H = 0 that is exactly a crossing between two
     consecutive recorded pairs: rising = previous < level <= current, falling = previous >= level
     > current. H > 0 keeps noise around the level from firing before the real edge.
  2. TRIGGERED: records the trigger pair and the P - Q - 1 recorded pairs after it.
  3. DONE: the ring holds Q pairs before the trigger and P - Q from it on. `read_addr` 0 is the
     oldest; `read_data` shows that pair one cycle after `read_addr` changes.

Why sample and hold and a trigger on the recorded stream (docs/protocol.md "Captures"): a recorded
pair is a calibrated sample exactly as the DSP summed it, so the host's model of a capture is exact
and needs no divider in the gateware; and the trigger pair is itself recorded, so pair k of a
capture is sample `first_index + k * D` exactly and the trigger is pair Q.

Out-of-range settings are clamped (P to 1..depth, Q to P - 1, D = 0 to 1); the firmware rejects
them first. `first_index` is trigger_index - Q * D: exact unless samples were dropped during the
capture (the SAMPLES_DROPPED counter tells). `config_seq` is that of the trigger pair.

Latency: a pair presented with `sample_valid` is in the ring at the next clock edge.
Block RAM: depth x 32 bits (4096 pairs = 8 EBR). One 12 x 16-bit multiply (Q * D).
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
    """Triggered, decimated raw capture with pretrigger.

    Ports:
        sample, sample_valid: calibrated pairs from PowerDsp (one per cycle at most).
        pairs, decimation, trigger, level, hysteresis, pretrigger: settings, read at `arm`
                        (CAPTURE_TRIGGER encoding; pairs and pretrigger count recorded pairs).
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
            "decimation": In(16),
            "trigger": In(3),
            "level": In(signed(16)),
            "hysteresis": In(16),
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
        dec = Signal(16)
        phase = Signal(16)                     # valid pairs since the last recorded one
        trig_mode = Signal(3)
        # level -/+ hysteresis reaches -32768 - 65535 .. 32767 + 65535: 18 bits signed.
        level = Signal(signed(18))
        prime_below = Signal(signed(18))       # rising: level - H
        prime_above = Signal(signed(18))       # falling: level + H
        waddr = Signal(abits)
        history = Signal(range(depth + 1))     # pairs recorded since arming (saturating at Q)
        remaining = Signal(range(depth + 1))   # pairs still to record after the trigger
        oldest = Signal(abits)
        primed = Signal()

        s = self.sample
        m.d.comb += [
            wr.addr.eq(waddr),
            wr.data.v.eq(s.v),
            wr.data.i.eq(s.i),
            rd.addr.eq(oldest + self.read_addr[:abits]),
        ]
        m.d.comb += self.read_data.eq(rd.data)

        rising_mode = (trig_mode == TRIGGER_V_RISING) | (trig_mode == TRIGGER_I_RISING)
        chan = Mux(trig_mode <= TRIGGER_V_FALLING, s.v, s.i)
        # Past the level in the trigger's direction, and beyond the hysteresis band the other way.
        past = Mux(rising_mode, chan >= level, chan < level)
        beyond = Mux(rising_mode, chan < prime_below, chan >= prime_above)
        fire = Signal()
        m.d.comb += fire.eq((history >= n_pre) & ((trig_mode == TRIGGER_IMMEDIATE) | (primed & past)))
        take = Signal()
        m.d.comb += take.eq(phase == 0)

        with m.If(self.arm):
            pairs_clamped = Mux(self.pairs == 0, 1, Mux(self.pairs > depth, depth, self.pairs))
            m.d.sync += [
                n_pairs.eq(pairs_clamped),
                n_pre.eq(Mux(self.pretrigger >= pairs_clamped, pairs_clamped - 1, self.pretrigger)),
                dec.eq(Mux(self.decimation == 0, 1, self.decimation)),
                phase.eq(0),
                trig_mode.eq(Mux(self.trigger > TRIGGER_I_FALLING, TRIGGER_IMMEDIATE, self.trigger)),
                level.eq(self.level),
                prime_below.eq(self.level - self.hysteresis),
                prime_above.eq(self.level + self.hysteresis),
                history.eq(0), primed.eq(0),
                self.armed.eq(1), self.triggered.eq(0), self.done.eq(0),
            ]
        with m.Elif(self.sample_valid & (self.armed | self.triggered)):
            m.d.sync += phase.eq(Mux(phase + 1 >= dec, 0, phase + 1))
            with m.If(take):
                m.d.comb += wr.en.eq(1)
                m.d.sync += waddr.eq(waddr + 1)
                with m.If(self.armed):
                    m.d.sync += primed.eq(beyond | (primed & ~past))
                    with m.If(history < n_pre):
                        m.d.sync += history.eq(history + 1)
                    with m.If(fire):
                        m.d.sync += [
                            self.armed.eq(0),
                            self.trigger_index.eq(s.index),
                            self.first_index.eq(s.index - n_pre * dec),
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
