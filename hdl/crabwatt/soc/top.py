"""SocTop: the full design for an OrangeCrab (r0.1 or r0.2, 25F) with the AD7357 wing.

    48 MHz osc --> EHXPLLL --> adc    72 MHz  AD7357 SCLK and serial capture
                          |--> adc_rd 72 MHz  AD7357 SDATA read register, phase set by ADC.READ_DELAY
                          |--> sync   48 MHz  power-on domain: reset controller, read-phase stepper, LED
                          |           (soc    same clock, also reset by the watchdog: CPU, DSP, capture)
                          |           (usb_io same clock: LUNA's pin-level PHY)
                          `--> usb    12 MHz  LUNA's USB protocol engine

    AD7357 --> AdcFrontEnd --> DspLink (PowerDsp, CaptureBuffer) --> SoC (VexRiscv, ROM, RAM, CSRs)
                                                                      |--> UartPhy  Feather TX/RX pins
                                                                      `--> LUNA USBSerialDevice (CDC-ACM)
    StatusLed (RGB LED): heartbeat, green with a USB host, blue without, red after ADC frame errors

A watchdog reset restarts the whole measurement path with the CPU, so the new boot starts a new
energy epoch from sample 0, which is what a new boot_id tells the host.
"""

from amaranth import *
from amaranth.build import Attrs, Pins, Resource, Subsignal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer

from ..adc_phase import PhaseStepper, read_clock_pll_args
from ..top import ADC_CLK_HZ, SYS_CLK_HZ, AdcFrontEnd, adc_wing_resource
from . import regmap
from .dsp_link import DspLink
from .led import StatusLed
from .soc import SoC
from .spiflash import ButtonReboot, flash_pins, flash_resource
from .sysctl import ResetController
from .uart import UartPhy
from .usb_serial import USB_CLK_HZ, attach_usb_serial

__all__ = ['SocTop', 'BOARD_IDS', 'USB_CLK_HZ', 'attach_usb_serial']

#: BOARD enum of the protocol (server/protocol/definition.ts).
BOARD_IDS = {'r0.1': 1, 'r0.2': 2}
ADC_PART_AD7357 = 1
UART_BAUD = 115_200
#: How long the r0.2's button must be held to return to the bootloader, as in litex-boards'
#: gsd_orangecrab target; shorter presses are ignored.
BUTTON_HOLD_S = 1


def feather_uart_resource():
    """The Feather header's TX (io 1) and RX (io 0) pins."""
    return Resource('feather_uart', 0,
                    Subsignal('tx', Pins('1', dir='o', conn=('io', 0))),
                    Subsignal('rx', Pins('0', dir='i', conn=('io', 0))),
                    Attrs(IO_TYPE='LVCMOS33'))



class SocClocks(Elaboratable):
    """EHXPLLL from the 48 MHz oscillator: VCO 576 MHz; CLKOP 72 MHz (adc, also the feedback),
    CLKOS 48 MHz (sync, soc, usb_io), CLKOS2 12 MHz (usb), CLKOS3 72 MHz (adc_rd: the ADC read
    register, its phase `read_phase` in 1/64 periods, crabwatt.adc_phase). Every domain is held in
    reset until the PLL locks. `soc_reset` (the watchdog's) also resets `soc` and `adc`."""

    def __init__(self):
        self.soc_reset = Signal()
        self.read_phase = Signal(6)
        self.read_phase_settled = Signal()

    def elaborate(self, platform):
        m = Module()
        for name in ('sync', 'soc', 'adc', 'usb', 'usb_io'):
            m.domains += ClockDomain(name)
        m.domains += ClockDomain('adc_rd', reset_less=True)
        clk48 = platform.request('clk', 0, dir='-')
        m.submodules.clk_buf = clk_buf = io.Buffer('i', clk48)
        # Named and kept: the clock constraints find these nets by name. Without `keep`, Yosys names
        # each net after one of its other names (adc.capture.adc_clk ...) and nextpnr drops the
        # constraint ("net 'clocks.clk_adc' does not exist"); the build's report lists any it drops.
        locked = Signal(name='pll_locked')
        clk_adc, clk_sys, clk_usb, clk_adc_rd = (Signal(name=name, attrs={'keep': 1}) for name in
                                                 ('clk_adc', 'clk_sys', 'clk_usb', 'clk_adc_rd'))
        # Counts the read clock's phase: in `sync`, which only power-on resets, like the PLL.
        m.submodules.read_phase = stepper = PhaseStepper()
        m.d.comb += [stepper.target.eq(self.read_phase), self.read_phase_settled.eq(stepper.settled)]
        m.submodules.pll = Instance(
            'EHXPLLL',
            a_FREQUENCY_PIN_CLKI='48', a_FREQUENCY_PIN_CLKOP='72', a_FREQUENCY_PIN_CLKOS='48',
            a_FREQUENCY_PIN_CLKOS2='12',
            a_ICP_CURRENT='12', a_LPF_RESISTOR='8', a_MFG_ENABLE_FILTEROPAMP='1', a_MFG_GMCREF_SEL='2',
            p_PLLRST_ENA='DISABLED', p_INTFB_WAKE='DISABLED', p_STDBY_ENABLE='DISABLED',
            p_OUTDIVIDER_MUXA='DIVA', p_OUTDIVIDER_MUXB='DIVB',
            p_OUTDIVIDER_MUXC='DIVC', p_OUTDIVIDER_MUXD='DIVD',
            p_CLKI_DIV=2, p_CLKFB_DIV=3, p_FEEDBK_PATH='CLKOP',
            p_CLKOP_ENABLE='ENABLED', p_CLKOP_DIV=8, p_CLKOP_CPHASE=7, p_CLKOP_FPHASE=0,
            p_CLKOS_ENABLE='ENABLED', p_CLKOS_DIV=12, p_CLKOS_CPHASE=11, p_CLKOS_FPHASE=0,
            p_CLKOS2_ENABLE='ENABLED', p_CLKOS2_DIV=48, p_CLKOS2_CPHASE=47, p_CLKOS2_FPHASE=0,
            i_CLKI=clk_buf.i, i_CLKFB=clk_adc, i_RST=0, i_STDBY=0,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, i_ENCLKOS=0, i_ENCLKOS2=0,
            o_CLKOP=clk_adc, o_CLKOS=clk_sys, o_CLKOS2=clk_usb, o_LOCK=locked,
            **read_clock_pll_args(stepper, clk_adc_rd, mhz=72, div=8))
        m.d.comb += [
            ClockSignal('adc').eq(clk_adc), ClockSignal('sync').eq(clk_sys), ClockSignal('soc').eq(clk_sys),
            ClockSignal('usb_io').eq(clk_sys), ClockSignal('usb').eq(clk_usb),
            ClockSignal('adc_rd').eq(clk_adc_rd),
        ]
        for name in ('sync', 'usb', 'usb_io'):
            m.submodules[f'rst_{name}'] = ResetSynchronizer(~locked, domain=name)
        # The ADC capture restarts with the rest of the measurement path: both sides of its async FIFO
        # reset together, and the sample index starts again at 0.
        for name in ('soc', 'adc'):
            m.submodules[f'rst_{name}'] = ResetSynchronizer(~locked | self.soc_reset, domain=name)
        platform.add_clock_constraint(clk_adc, ADC_CLK_HZ)
        platform.add_clock_constraint(clk_adc_rd, ADC_CLK_HZ)
        platform.add_clock_constraint(clk_sys, SYS_CLK_HZ)
        platform.add_clock_constraint(clk_usb, USB_CLK_HZ)
        return m


class SocTop(Elaboratable):
    def __init__(self, *, board: str, image: bytes, usb: bool = True):
        if board not in BOARD_IDS:
            raise ValueError(f'unknown board {board!r}: use one of {", ".join(BOARD_IDS)}')
        self._board, self._image, self._usb = board, image, usb

    def elaborate(self, platform):
        m = Module()
        platform.add_resources([adc_wing_resource(), feather_uart_resource(), flash_resource()])
        m.submodules.clocks = clocks = SocClocks()

        m.submodules.resets = resets = ResetController()      # sync: power-on reset only
        m.d.comb += clocks.soc_reset.eq(resets.soc_reset)

        link = DspLink(capture_depth=4096)
        soc = SoC(image=self._image, sys_clk_hz=SYS_CLK_HZ, board=BOARD_IDS[self._board],
                  adc_part=ADC_PART_AD7357, capture_depth=link.capture_depth, uart_baud=UART_BAUD,
                  usb=self._usb)
        link.attach(soc)
        m.submodules.soc = DomainRenamer('soc')(soc)
        m.submodules.link = DomainRenamer('soc')(link)
        m.submodules.adc = adc = DomainRenamer({'sync': 'soc'})(AdcFrontEnd())
        wiring.connect(m, adc.samples, link.samples)
        m.d.comb += [link.samples_dropped.eq(adc.samples_dropped), link.adc_errors.eq(adc.adc_errors)]
        m.d.comb += [adc.read_delay.eq(soc.adc_read_delay), clocks.read_phase.eq(soc.adc_read_delay[:6]),
                     soc.adc_phase_settled.eq(clocks.read_phase_settled),
                     adc.read_settled.eq(clocks.read_phase_settled)]
        m.d.comb += [resets.fire.eq(soc.wdt_fire), soc.reset_cause_watchdog.eq(resets.cause_watchdog),
                     soc.wdt_resets.eq(resets.wdt_resets)]

        # UART on the Feather pins.
        m.submodules.uart = uart = DomainRenamer('soc')(UartPhy())
        pins = platform.request('feather_uart', 0, dir='-')
        m.submodules.tx_buf = tx_buf = io.Buffer('o', pins.tx)
        m.submodules.rx_buf = rx_buf = io.Buffer('i', pins.rx)
        m.d.comb += [uart.divisor.eq(soc.uart_divisor), tx_buf.o.eq(uart.tx_pin), uart.rx_pin.eq(rx_buf.i)]
        wiring.connect(m, soc.uart_tx, uart.tx)
        wiring.connect(m, uart.rx, soc.uart_rx)

        # USB CDC-ACM: LUNA runs in usb/usb_io; the SoC's byte channel crosses with async FIFOs.
        if self._usb:
            serial = attach_usb_serial(m, soc, platform.request('usb', 0))

        # Signs of life on the RGB LED (crabwatt.soc.led), in the power-on domain.
        m.submodules.led = led = StatusLed(SYS_CLK_HZ // 1000)
        m.d.comb += led.adc_errors.eq(adc.adc_errors)
        if self._usb:
            m.submodules.led_host_sync = FFSynchronizer(serial.host_active, led.host_active)
        rgb = platform.request('rgb_led', 0, dir='-')
        for k, colour in enumerate('rgb'):
            m.submodules[f'led_{colour}'] = led_buf = io.Buffer('o', getattr(rgb, colour))
            m.d.comb += led_buf.o.eq(led.rgb[k])

        flash_pins(m, platform, sck=soc.flash_sck, copi=soc.flash_copi, cs=soc.flash_cs, cipo=soc.flash_cipo)

        # Return to the bootloader: PROGRAMN low reconfigures the FPGA from flash (foboot), asked for by
        # the firmware (SYS.REBOOT, the host's cmd_reboot) or, on r0.2, by holding the button. The
        # r0.1's button is wired to PROGRAMN on the board itself and reaches no FPGA pin.
        reboot = soc.reboot
        if self._board == 'r0.2':
            m.submodules.button_reboot = button = ButtonReboot(hold_cycles=BUTTON_HOLD_S * SYS_CLK_HZ)
            m.submodules.button_buf = button_buf = io.Buffer('i', platform.request('button', 0, dir='-'))
            m.d.comb += button.pressed.eq(button_buf.i)
            reboot = reboot | button.reboot
        program = platform.request('program', 0, dir='-')
        m.submodules.program_buf = program_buf = io.Buffer('o', program)
        m.d.comb += program_buf.o.eq(reboot)
        return m
