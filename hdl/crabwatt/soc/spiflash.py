"""The configuration SPI flash, reached by the CPU one byte at a time, and the button that returns
the board to its bootloader.

`SpiFlashMaster` is SPI mode 0, single data line: the CPU selects the chip, writes a byte, waits
while `busy` and reads the byte that came back. The firmware (firmware/src/flash.c) speaks the
flash's commands over it: the unique ID (0x4B) that names the board, and the user area that keeps
the calibration. On the board the flash clock pin is the ECP5's configuration clock, which a design
reaches only through the USRMCLK primitive (`flash_pins`); the twin's harness models the flash
(hdl/twin/harness.cpp with firmware/test/flash_model.c).

`ButtonReboot`: the references wire the OrangeCrab r0.2's button to PROGRAMN (litex-boards'
gsd_orangecrab, orangecrab-examples' blink_reset). Held `hold_cycles` (about 1 s), it asks for a
reconfiguration; foboot then finds the button still held and stays in DFU.
"""

from amaranth import *
from amaranth.build import Attrs, Pins, PinsN, Resource, Subsignal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ['SpiFlashMaster', 'ButtonReboot', 'flash_resource', 'flash_pins']


class SpiFlashMaster(wiring.Component):
    """SPI mode 0 (SCK idles low, both sides sample on the rising edge), MSB first.

    - `select`: in, the chip is selected (CS# low) while it is 1;
    - `tx_data`, `tx_stb`: in, a byte to shift out; ignored while `busy`;
    - `busy`: out, a byte is being shifted; `rx_data`: out, the byte shifted in by the last transfer;
    - `sck`, `copi`, `cs`: out, registered pin levels (`cs` 1 = selected); `cipo`: in.

    Each SCK half period is `half_period_cycles` clock cycles: 2 gives 12 MHz at 48 MHz, far below
    the W25Q128JV's 50 MHz for READ (0x03), with a whole cycle between SCK rising at the pin and the
    sample for the flash's clock-to-output (6 ns) and both pins' delays."""

    select: In(1)
    tx_data: In(8)
    tx_stb: In(1)
    busy: Out(1)
    rx_data: Out(8)
    sck: Out(1)
    copi: Out(1)
    cs: Out(1)
    cipo: In(1)

    def __init__(self, half_period_cycles: int = 2):
        if half_period_cycles < 1:
            raise ValueError('half_period_cycles must be at least 1')
        self._half = half_period_cycles
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        shift_out = Signal(8)
        shift_in = Signal(8)
        bits_left = Signal(range(9))
        timer = Signal(range(self._half))
        m.d.comb += [self.busy.eq(bits_left != 0), self.copi.eq(shift_out[7])]
        m.d.sync += self.cs.eq(self.select)
        with m.If(bits_left == 0):
            with m.If(self.tx_stb):
                m.d.sync += [shift_out.eq(self.tx_data), bits_left.eq(8), timer.eq(self._half - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(~self.sck):
            m.d.sync += [self.sck.eq(1), timer.eq(self._half - 1)]
        with m.Else():
            # The end of the high half: the flash's bit has had the whole half to settle.
            sampled = Cat(self.cipo, shift_in[:7])
            m.d.sync += [self.sck.eq(0), shift_in.eq(sampled), shift_out.eq(shift_out << 1),
                         bits_left.eq(bits_left - 1), timer.eq(self._half - 1)]
            with m.If(bits_left == 1):
                m.d.sync += self.rx_data.eq(sampled)
        return m


class ButtonReboot(wiring.Component):
    """`pressed` (in, asynchronous) held for `hold_cycles` cycles raises `reboot` (out) and keeps it
    up until the FPGA reconfigures. A shorter press does nothing, so a knock on the board does not
    restart a measurement."""

    pressed: In(1)
    reboot: Out(1)

    def __init__(self, hold_cycles: int):
        if hold_cycles < 1:
            raise ValueError('hold_cycles must be at least 1')
        self._hold = hold_cycles
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        pressed = Signal()
        m.submodules.sync_button = FFSynchronizer(self.pressed, pressed)
        held = Signal(range(self._hold + 1))
        with m.If(~pressed):
            m.d.sync += held.eq(0)
        with m.Elif(held != self._hold):
            m.d.sync += held.eq(held + 1)
        with m.Else():
            m.d.sync += self.reboot.eq(1)
        return m


def flash_resource():
    """The configuration flash on both OrangeCrab revisions (amaranth-boards' `spi_flash_1x` pins)
    without its clock pin U16, which is the ECP5's MCLK: after configuration only USRMCLK drives it.
    WP# and HOLD# are held inactive (high) for single-line SPI."""
    return Resource('config_flash', 0,
                    Subsignal('cs', PinsN('U17', dir='o')),
                    Subsignal('copi', Pins('U18', dir='o')),
                    Subsignal('cipo', Pins('T18', dir='i')),
                    Subsignal('wp', PinsN('R18', dir='o')),
                    Subsignal('hold', PinsN('N18', dir='o')),
                    Attrs(IO_TYPE='LVCMOS33'))


def flash_pins(m, platform, *, sck, copi, cs, cipo):
    """Wires a `SpiFlashMaster`'s pin signals to the board's flash: buffers for the data pins,
    USRMCLK for the clock."""
    pins = platform.request('config_flash', 0, dir='-')
    m.submodules.flash_cs = cs_buf = io.Buffer('o', pins.cs)
    m.submodules.flash_copi = copi_buf = io.Buffer('o', pins.copi)
    m.submodules.flash_cipo = cipo_buf = io.Buffer('i', pins.cipo)
    m.submodules.flash_wp = wp_buf = io.Buffer('o', pins.wp)
    m.submodules.flash_hold = hold_buf = io.Buffer('o', pins.hold)
    m.d.comb += [cs_buf.o.eq(cs), copi_buf.o.eq(copi), cipo.eq(cipo_buf.i), wp_buf.o.eq(0), hold_buf.o.eq(0)]
    m.submodules.usrmclk = Instance('USRMCLK', i_USRMCLKI=sck, i_USRMCLKTS=0)
