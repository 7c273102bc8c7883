"""The top of the RTL digital twin: the SoC (and, with `with_dsp`, the DSP core fed with samples by
the Verilator harness), with the UART taken at the byte FIFOs (no bit timing), so the harness moves
bytes between the simulation and a pseudo-terminal.

Ports (Verilog names): `clk`, `rst` (power-on reset, active high); `uart_tx_*`/`uart_rx_*` byte streams;
`sample_valid`, `sample_cv`, `sample_ci` (one pair of 14-bit ADC codes per valid cycle);
`reboot` (the firmware asked for the bootloader: the harness ends the run);
`flash_sck`, `flash_copi`, `flash_cs` (1 = selected), `flash_cipo`: the configuration flash's SPI pins,
which the harness connects to its flash model;
`adc_read_delay`: the ADC capture point in effect now (ADC.READ_DELAY's whole periods, and the phase the
read clock's PLL has reached: the gateware's own PhaseStepper walks it there one step at a time, and
ADC.STATUS.SETTLED says when), for the harness's model of the AD7357's read timing, which turns each
stimulus pair into the codes that capture point reads; `adc_error`: with a sample, its leading zeros
were wrong (counted in COUNTERS.ADC_ERRORS).
"""

import argparse
import pathlib
import sys

from amaranth import *
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..adc_phase import PhaseStepper
from .soc import SoC
from .sysctl import ResetController

__all__ = ['TwinTop', 'SYS_CLK_HZ', 'SAMPLE_PERIOD_CYCLES']

#: The twin's simulated system clock. It is lower than the board's 48 MHz because Verilator runs this
#: SoC at about 1 MHz of simulated clock per CPU second here: at 8 MHz, one ADC pair every 2 cycles
#: is 4 Msps and the twin runs at about 0.12 of real time per CPU second. The RTL is the same; the firmware reads the
#: clock from IDENT.SYS_CLK_HZ, and gets 1/6 of the board's cycles per sample (a harder case than the
#: board: with real mains a window still leaves it about a million cycles).
SYS_CLK_HZ = 8_000_000
SAMPLE_PERIOD_CYCLES = 2
BOARD_RTL_TWIN = 3
ADC_PART_SIMULATED = 0

class TwinTop(wiring.Component):
    # Flat ports (no `__` in the names, which Verilator mangles).
    uart_tx_data: Out(8)
    uart_tx_valid: Out(1)
    uart_tx_ready: In(1)
    uart_rx_data: In(8)
    uart_rx_valid: In(1)
    uart_rx_ready: Out(1)
    sample_valid: In(1)
    sample_cv: In(14)
    sample_ci: In(14)
    reboot: Out(1)
    flash_sck: Out(1)
    flash_copi: Out(1)
    flash_cs: Out(1)
    flash_cipo: In(1)
    adc_read_delay: Out(8)
    adc_error: In(1)

    #: The USB twin (crabwatt.soc.usbtwin) adds the SoC's USB link and its clocks in `attach_usb`.
    WITH_USB = False

    def __init__(self, image: bytes, *, dsp_factory=None):
        """`dsp_factory()`, when given, returns the measurement path (`crabwatt.soc.dsp_link.DspLink`)."""
        self._image, self._dsp_factory = image, dsp_factory
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        # `sync` is the power-on domain (the harness's clk and rst); everything that a watchdog reset
        # restarts runs in `soc`, the same clock with the watchdog's reset added.
        m.domains.soc = ClockDomain('soc')
        m.submodules.resets = resets = ResetController()
        m.d.comb += [ClockSignal('soc').eq(ClockSignal('sync')),
                     ResetSignal('soc').eq(ResetSignal('sync') | resets.soc_reset)]

        link = self._dsp_factory() if self._dsp_factory is not None else None
        soc = SoC(
            image=self._image, sys_clk_hz=SYS_CLK_HZ, board=BOARD_RTL_TWIN, adc_part=ADC_PART_SIMULATED,
            capture_depth=link.capture_depth if link is not None else 0,
            device_id=0x5457_494E_0000_0001,   # "TWIN", serial 1
            usb=self.WITH_USB)
        m.submodules.soc = DomainRenamer('soc')(soc)
        if self.WITH_USB:
            self.attach_usb(m, soc)
        m.d.comb += [resets.fire.eq(soc.wdt_fire), soc.reset_cause_watchdog.eq(resets.cause_watchdog),
                     soc.wdt_resets.eq(resets.wdt_resets), self.reboot.eq(soc.reboot)]
        m.d.comb += [
            self.uart_tx_data.eq(soc.uart_tx.payload), self.uart_tx_valid.eq(soc.uart_tx.valid),
            soc.uart_tx.ready.eq(self.uart_tx_ready),
            soc.uart_rx.payload.eq(self.uart_rx_data), soc.uart_rx.valid.eq(self.uart_rx_valid),
            self.uart_rx_ready.eq(soc.uart_rx.ready),
            self.flash_sck.eq(soc.flash_sck), self.flash_copi.eq(soc.flash_copi), self.flash_cs.eq(soc.flash_cs),
            soc.flash_cipo.eq(self.flash_cipo),
        ]

        # The read clock's phase stepper lives in the power-on domain, as on the board (SocTop).
        m.submodules.read_phase = stepper = PhaseStepper()
        m.d.comb += [stepper.target.eq(soc.adc_read_delay[:6]), soc.adc_phase_settled.eq(stepper.settled),
                     self.adc_read_delay.eq(Cat(stepper.phase, soc.adc_read_delay[6:]))]

        if link is not None:
            link.attach(soc)
            m.submodules.dsp = DomainRenamer('soc')(link)
            # The harness is the ADC: it numbers nothing, so the samples are numbered here, and a pair
            # the DSP cannot take is counted as dropped (as the ADC front end does on the board).
            index = Signal(64)
            dropped = Signal(32)
            adc_errors = Signal(32)
            # As AdcCapture on the board: a pair read while the read clock's phase walks is no sample.
            # None is numbered before the first good one (power-up costs no drops); after it, such a
            # pair is dropped with its index used up. The harness reads each pair at the phase of its
            # cycle, so being settled in that cycle is enough here (the board also waits out its PLL).
            good = Signal()
            started = Signal()
            unsettled = Signal()
            m.d.comb += [good.eq(self.sample_valid & stepper.settled),
                         unsettled.eq(self.sample_valid & ~stepper.settled & started)]
            m.d.comb += [
                link.samples.payload.cv.eq(self.sample_cv), link.samples.payload.ci.eq(self.sample_ci),
                link.samples.payload.index.eq(index), link.samples.valid.eq(good),
                link.samples_dropped.eq(dropped), link.adc_errors.eq(adc_errors),
            ]
            with m.If(good):
                m.d.soc += started.eq(1)
            with m.If(good & self.adc_error & (adc_errors != 0xFFFF_FFFF)):
                m.d.soc += adc_errors.eq(adc_errors + 1)
            with m.If((good & link.samples.ready) | unsettled):
                m.d.soc += index.eq(index + 1)
            with m.If(((good & ~link.samples.ready) | unsettled) & (dropped != 0xFFFF_FFFF)):
                m.d.soc += dropped.eq(dropped + 1)
        return m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description='Write the twin top as Verilog for Verilator.')
    p.add_argument('--image', type=pathlib.Path, required=True, help='firmware .bin for the boot ROM')
    p.add_argument('--out', type=pathlib.Path, required=True, help='Verilog file to write')
    p.add_argument('--no-dsp', action='store_true', help='SoC only (the self-test)')
    p.add_argument('--config-header', type=pathlib.Path, help='write the harness constants (C header) here')
    a = p.parse_args(argv)
    factory = None
    if not a.no_dsp:
        from .dsp_link import DspLink
        factory = DspLink
    top = TwinTop(a.image.read_bytes(), dsp_factory=factory)
    text = verilog.convert(top, name='crabwatt_twin', emit_src=False)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    if a.config_header:
        a.config_header.write_text(
            '/* GENERATED by crabwatt.soc.twin: the twin constants the harness must agree with. */\n'
            f'#define CW_TWIN_SYS_CLK_HZ {SYS_CLK_HZ}ull\n'
            f'#define CW_TWIN_SAMPLE_PERIOD_CYCLES {SAMPLE_PERIOD_CYCLES}ull\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
