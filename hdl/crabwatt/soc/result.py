"""The DSP result FIFO: window records, written whole or dropped, read by the CPU as 32-bit words
in the order of `regmap.WINDOW_RECORD_WORDS`."""

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..dsp.layouts import WindowLayout
from . import regmap

__all__ = ['WindowRecord', 'ResultFifo']

#: A window as the DSP reports it (docs/dsp.md), plus the energy accumulator at its end: the DSP
#: core's own layout, so the two cannot drift apart.
WindowRecord = WindowLayout()


def record_words(r) -> dict[str, Value]:
    """The FIFO words of a record, by the names of `regmap.WINDOW_RECORD_WORDS`."""
    header = Cat(C(regmap.RECORD_KIND_WINDOW, 8), C(regmap.WINDOW_RECORD_WORD_COUNT, 8), r.config_seq)
    words = {
        'HEADER': header,
        'END_INDEX_LO': r.end_index[:32], 'END_INDEX_HI': r.end_index[32:],
        'SAMPLES': r.samples,
        'MIN_MAX_V': Cat(r.min_v, r.max_v), 'MIN_MAX_I': Cat(r.min_i, r.max_i),
        'ZC_COUNT_FLAGS': Cat(r.zc_count, r.flags),
        'ZC_FIRST_OFFSET': r.zc_first_offset, 'ZC_FIRST_PREV_CUR': Cat(r.zc_first_prev, r.zc_first_cur),
        'ZC_LAST_OFFSET': r.zc_last_offset, 'ZC_LAST_PREV_CUR': Cat(r.zc_last_prev, r.zc_last_cur),
        'ENERGY_0': r.energy[:32], 'ENERGY_1': r.energy[32:64],
        'ENERGY_2': r.energy[64:],
    }
    for name in ('sum_v', 'sum_i', 'sum_vv', 'sum_ii', 'sum_vi'):
        v = getattr(r, name)
        words[f'{name.upper()}_LO'] = v[:32]
        words[f'{name.upper()}_HI'] = v[32:]
    assert set(words) == {n for n, _ in regmap.WINDOW_RECORD_WORDS}
    return words


class ResultFifo(wiring.Component):
    """`valid` pulses for one cycle with a finished window on `record`. The record is latched and
    written one word per cycle; while that takes place, or when the FIFO lacks room for the whole
    record, an arriving record is dropped and `overflows` counts it. The producer never waits."""

    def __init__(self, depth_words: int = 512):
        self.depth_words = depth_words
        super().__init__({
            'record': In(WindowRecord), 'valid': In(1),
            'data': Out(32), 'level': Out(16), 'pop': In(1),
            'overflows': Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=32, depth=self.depth_words)
        n = regmap.WINDOW_RECORD_WORD_COUNT
        held = Signal(WindowRecord)
        index = Signal(range(n + 1))
        busy = Signal()
        m.d.comb += busy.eq(index != 0)

        words = record_words(held)
        with m.Switch(index):
            for i, (name, _) in enumerate(regmap.WINDOW_RECORD_WORDS):
                with m.Case(n - i):     # index counts down from n to 1
                    m.d.comb += fifo.w_data.eq(words[name])
        m.d.comb += fifo.w_en.eq(busy)
        with m.If(busy):
            m.d.sync += index.eq(index - 1)

        room = Signal()
        m.d.comb += room.eq(fifo.level + n <= fifo.depth)
        with m.If(self.valid):
            with m.If(~busy & room):
                m.d.sync += [held.eq(self.record), index.eq(n)]
            with m.Elif(self.overflows != 0xFFFF_FFFF):
                m.d.sync += self.overflows.eq(self.overflows + 1)

        m.d.comb += [
            self.data.eq(fifo.r_data), self.level.eq(fifo.level), fifo.r_en.eq(self.pop),
        ]
        return m
