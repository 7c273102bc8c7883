"""A minimal classic Wishbone (B4, 32-bit data, word addresses) and an address decoder.

VexRiscv's buses are classic Wishbone with word addresses (`adr` = byte address >> 2); every slave
here answers one access at a time with a registered `ack` (or `err`), which is all the CPU needs.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ['Signature', 'Decoder', 'ack_once']


class Signature(wiring.Signature):
    """Master's view: `adr` is a word address."""

    def __init__(self, addr_width: int = 30):
        self.addr_width = addr_width
        super().__init__({
            'cyc': Out(1), 'stb': Out(1), 'we': Out(1),
            'adr': Out(addr_width), 'dat_w': Out(32), 'sel': Out(4),
            'dat_r': In(32), 'ack': In(1), 'err': In(1),
        })


def ack_once(m: Module, bus) -> Value:
    """Drives `bus.ack` one cycle after a request and for one cycle only; returns the condition that is
    true in the request's first cycle (the cycle in which a slave performs a write)."""
    first = bus.cyc & bus.stb & ~bus.ack
    m.d.sync += bus.ack.eq(first)
    return first


class Decoder(wiring.Component):
    """Routes one master to slaves chosen by the top `select_bits` bits of the 32-bit byte address.

    Each slave is `(region, bus)` with `region` the value of those top bits. An access to an unmapped
    region is answered with `err` (the CPU takes an access fault rather than hanging).
    """

    def __init__(self, slaves, *, select_bits: int = 4):
        self._slaves = list(slaves)
        self._select_bits = select_bits
        super().__init__({'bus': In(Signature())})

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        region_of = bus.adr[-self._select_bits:]
        hit_any = Signal()
        hits = []
        for region, slave in self._slaves:
            hit = Signal(name=f'hit_{region:x}')
            m.d.comb += hit.eq(region_of == region)
            hits.append(hit)
            m.d.comb += [
                slave.cyc.eq(bus.cyc & hit), slave.stb.eq(bus.stb & hit),
                slave.we.eq(bus.we), slave.adr.eq(bus.adr), slave.dat_w.eq(bus.dat_w), slave.sel.eq(bus.sel),
            ]
            with m.If(hit):
                m.d.comb += [bus.dat_r.eq(slave.dat_r), bus.ack.eq(slave.ack), bus.err.eq(slave.err)]
        m.d.comb += hit_any.eq(Cat(hits).any())
        unmapped_err = Signal()
        m.d.sync += unmapped_err.eq(bus.cyc & bus.stb & ~hit_any & ~unmapped_err)
        with m.If(~hit_any):
            m.d.comb += bus.err.eq(unmapped_err)
        return m
