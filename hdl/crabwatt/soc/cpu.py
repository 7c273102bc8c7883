"""VexRiscv (LiteX "standard": rv32im, 4 KiB instruction and data caches, Wishbone buses), from the
pre-generated Verilog shipped by PyPI's `pythondata-cpu-vexriscv`."""

import pathlib

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from . import wishbone

__all__ = ['VexRiscv', 'verilog_path']


def verilog_path(variant: str = 'VexRiscv') -> pathlib.Path:
    import pythondata_cpu_vexriscv
    path = pathlib.Path(pythondata_cpu_vexriscv.data_location) / f'{variant}.v'
    if not path.exists():
        raise FileNotFoundError(f'{path}: pythondata-cpu-vexriscv lacks the {variant} variant')
    return path


class VexRiscv(wiring.Component):
    """The CPU. `ibus` fetches instructions, `dbus` loads and stores; addresses with bit 31 set are I/O
    (uncached). Runs in the `sync` domain and starts at `reset_vector`."""

    ibus: Out(wishbone.Signature())
    dbus: Out(wishbone.Signature())

    def __init__(self, *, reset_vector: int = 0):
        self._reset_vector = reset_vector
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        if platform is not None and hasattr(platform, 'add_file'):
            path = verilog_path()
            platform.add_file(path.name, path.read_text())
        ports = dict(
            i_clk=ClockSignal(), i_reset=ResetSignal(),
            i_externalResetVector=C(self._reset_vector, 32),
            i_timerInterrupt=C(0, 1), i_softwareInterrupt=C(0, 1), i_externalInterruptArray=C(0, 32),
        )
        for name, bus in (('iBusWishbone', self.ibus), ('dBusWishbone', self.dbus)):
            ports.update({
                f'o_{name}_CYC': bus.cyc, f'o_{name}_STB': bus.stb, f'o_{name}_WE': bus.we,
                f'o_{name}_ADR': bus.adr, f'o_{name}_DAT_MOSI': bus.dat_w, f'o_{name}_SEL': bus.sel,
                f'i_{name}_DAT_MISO': bus.dat_r, f'i_{name}_ACK': bus.ack, f'i_{name}_ERR': bus.err,
                f'o_{name}_CTI': Signal(3, name=f'{name}_cti'), f'o_{name}_BTE': Signal(2, name=f'{name}_bte'),
            })
        m.submodules.vexriscv = Instance('VexRiscv', **ports)
        return m
