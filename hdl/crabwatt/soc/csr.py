"""The CSR bank: the registers of `regmap` decoded on a Wishbone slave.

Each register is reached as `bank[block, name]`, an object with
- `value`: the register's signal. `rw`: the storage (driven here; read it). `ro`: drive it from the
  hardware. `const`: driven here from the build-time value. `wo`: the written data (valid with w_stb);
- `w_stb`: one-cycle pulse when the CPU writes the register; `r_stb`: one-cycle pulse when it reads it.
"""

from dataclasses import dataclass

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from . import regmap, wishbone

__all__ = ['CsrBank']


@dataclass
class _Reg:
    desc: regmap.Register
    word: int
    value: Signal
    w_stb: Signal
    r_stb: Signal
    const: int | None


class CsrBank(wiring.Component):
    bus: In(wishbone.Signature())

    def __init__(self, blocks=regmap.BLOCKS, *, values: dict | None = None):
        """`values` maps (block, name) to the build-time value of a `const` register or the reset value
        of a `rw` register, overriding the map's default."""
        super().__init__()
        values = dict(values or {})
        self._regs: dict[tuple[str, str], _Reg] = {}
        for b in blocks:
            for r in b.registers:
                key = (b.name, r.name)
                init = values.pop(key, r.reset)
                shape = signed(r.width) if r.signed else unsigned(r.width)
                if r.access == 'wo':
                    shape = unsigned(32)
                name = f'{b.name}_{r.name}'.lower()
                self._regs[key] = _Reg(
                    desc=r, word=(b.base + r.offset) // 4,
                    value=Signal(shape, name=name, init=init if r.access == 'rw' else 0),
                    w_stb=Signal(name=f'{name}_w_stb'), r_stb=Signal(name=f'{name}_r_stb'),
                    const=init if r.access == 'const' else None)
        if values:
            raise KeyError(f'no such registers: {sorted(values)}')

    def __getitem__(self, key) -> _Reg:
        return self._regs[key]

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        first = wishbone.ack_once(m, bus)
        word = bus.adr[:10]
        read_data = Signal(32)
        for reg in self._regs.values():
            if reg.const is not None:
                m.d.comb += reg.value.eq(reg.const)
        with m.Switch(word):
            for reg in self._regs.values():
                with m.Case(reg.word):
                    if reg.desc.access != 'wo':
                        m.d.comb += read_data.eq(reg.value.as_signed() if reg.desc.signed else reg.value)
                    m.d.comb += [reg.w_stb.eq(first & bus.we), reg.r_stb.eq(first & ~bus.we)]
                    if reg.desc.access == 'rw':
                        with m.If(first & bus.we):
                            m.d.sync += reg.value.eq(bus.dat_w[:reg.desc.width])
                    elif reg.desc.access == 'wo':
                        m.d.comb += reg.value.eq(bus.dat_w)
        with m.If(first):
            m.d.sync += bus.dat_r.eq(read_data)
        return m
