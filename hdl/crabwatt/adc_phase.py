"""The ADC read clock's phase: an EHXPLLL output at the `adc` frequency whose phase the gateware
moves in steps of 1/8 of the VCO period (the PLL's dynamic phase shift), so the SDATA input register
samples where the bring-up scan found the eye (crabwatt.adc, crabwatt.adc_timing).

The PLL keeps its phase through a watchdog reset, so the stepper that counts it must too: it lives
in a domain reset only at power-on (`sync` in SocTop). Its target comes from ADC.READ_DELAY, which a
watchdog reset returns to its default; the stepper then walks the phase back to match.
"""
from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .adc import READ_STEPS

__all__ = ['PhaseStepper', 'read_clock_pll_args']

#: EHXPLLL PHASESEL value for CLKOS3 (0 CLKOS, 1 CLKOS2, 2 CLKOS3, 3 CLKOP).
PHASESEL_CLKOS3 = 2
#: PHASEDIR 0 delays the selected output (lags), one step per PHASESTEP pulse.
PHASEDIR_LATER = 0
#: Cycles between steps (PHASESTEP is taken on its falling edge; 5 ns setup and high time are
#: needed, a cycle at 48 MHz is 20.8 ns): high one cycle, low GAP - 1.
GAP = 4


class PhaseStepper(wiring.Component):
    """Steps the read clock from its configured phase (0) to `target` (0..63, 1/64 period each),
    always later, wrapping after a whole period. `settled`: the PLL's phase is `target`."""
    target: In(6)
    settled: Out(1)
    phasestep: Out(1)
    phase: Out(6)          # the phase the PLL has now

    def elaborate(self, platform):
        m = Module()
        wait = Signal(range(GAP))
        m.d.sync += self.phasestep.eq(0)
        with m.If(wait != 0):
            m.d.sync += wait.eq(wait - 1)
        with m.Elif(self.phase != self.target):
            m.d.sync += [self.phasestep.eq(1), self.phase.eq(self.phase + 1), wait.eq(GAP - 1)]
        m.d.comb += self.settled.eq((self.phase == self.target) & (wait == 0))
        return m


def read_clock_pll_args(stepper, clk_out, *, mhz, div):
    """EHXPLLL keyword arguments for CLKOS3 as the read clock (same divider as the `adc` clock,
    dynamic phase driven by `stepper`)."""
    assert READ_STEPS == 8 * div, 'a step is 1/8 VCO period: 64 per period needs the VCO at 8x'
    return dict(
        a_FREQUENCY_PIN_CLKOS3=str(mhz), p_DPHASE_SOURCE='ENABLED',
        p_CLKOS3_ENABLE='ENABLED', p_CLKOS3_DIV=div, p_CLKOS3_CPHASE=div - 1, p_CLKOS3_FPHASE=0,
        i_PHASESEL0=PHASESEL_CLKOS3 & 1, i_PHASESEL1=PHASESEL_CLKOS3 >> 1, i_PHASEDIR=PHASEDIR_LATER,
        i_PHASESTEP=stepper.phasestep, i_PHASELOADREG=0, i_ENCLKOS3=0, o_CLKOS3=clk_out)
