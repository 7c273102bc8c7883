"""Block-RAM memories on Wishbone: the boot ROM (two read ports: instruction and data bus) and the RAM."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from . import wishbone

__all__ = ['Rom', 'Ram', 'image_words']


def image_words(image: bytes, size_bytes: int) -> list[int]:
    """The little-endian 32-bit words of a firmware image, checked against the ROM size."""
    if len(image) > size_bytes:
        raise ValueError(f'firmware image is {len(image)} bytes; the ROM holds {size_bytes}')
    padded = image + bytes(-len(image) % 4)
    return [int.from_bytes(padded[i:i + 4], 'little') for i in range(0, len(padded), 4)]


class Rom(wiring.Component):
    """Read-only; writes are acknowledged and ignored (a stray store must not hang the CPU)."""

    def __init__(self, size_bytes: int, image: bytes = b''):
        self._depth = size_bytes // 4
        self._init = image_words(image, size_bytes)
        super().__init__({'ibus': In(wishbone.Signature()), 'dbus': In(wishbone.Signature())})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=32, depth=self._depth, init=self._init)
        index_bits = (self._depth - 1).bit_length()
        for bus in (self.ibus, self.dbus):
            port = mem.read_port()
            m.d.comb += [port.addr.eq(bus.adr[:index_bits]), bus.dat_r.eq(port.data)]
            wishbone.ack_once(m, bus)
        return m


class Ram(wiring.Component):
    def __init__(self, size_bytes: int):
        self._depth = size_bytes // 4
        super().__init__({'bus': In(wishbone.Signature())})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=32, depth=self._depth, init=[])
        index_bits = (self._depth - 1).bit_length()
        rd = mem.read_port()
        wr = mem.write_port(granularity=8)
        bus = self.bus
        first = wishbone.ack_once(m, bus)
        m.d.comb += [
            rd.addr.eq(bus.adr[:index_bits]), bus.dat_r.eq(rd.data),
            wr.addr.eq(bus.adr[:index_bits]), wr.data.eq(bus.dat_w),
        ]
        with m.If(first & bus.we):
            m.d.comb += wr.en.eq(bus.sel)
        return m
