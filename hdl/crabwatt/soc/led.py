"""StatusLed: the OrangeCrab's RGB LED as a sign of life that tells the three states apart at a glance.

    green double blink every second   running, a host reads the USB port
    blue double blink every second    running, no host on USB (unplugged from a computer, port not
                                      enabled, or a UART-only setup)
    red blinking 4 times a second     the ADC reported frame errors within the last second (wing
                                      missing or loose, wrong capture point: see `crabwatt bringup`)

Dark: no bitstream running (or the FPGA is being configured). Runs in the power-on domain, so it keeps
its rhythm through watchdog resets.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ['StatusLed']

HEARTBEAT_MS = 1000
#: The double blink: on from 0 to 80 ms and from 200 to 280 ms of each second.
BLINKS_MS = ((0, 80), (200, 280))
ERROR_BLINK_MS = 125           # on 125 ms, off 125 ms
ERROR_HOLD_MS = 1000           # how long one frame error keeps the LED red


class StatusLed(wiring.Component):
    """`adc_errors`: the saturating frame-error counter (any domain with this clock); `host_active`:
    a host is on the USB port (synchronised by the owner). `rgb`: red, green, blue, 1 = lit."""
    adc_errors: In(32)
    host_active: In(1)
    rgb: Out(3)

    def __init__(self, cycles_per_ms: int):
        self._cycles_per_ms = cycles_per_ms
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        prescaler = Signal(range(self._cycles_per_ms))
        ms = Signal(range(HEARTBEAT_MS))
        tick = prescaler == self._cycles_per_ms - 1
        m.d.sync += prescaler.eq(Mux(tick, 0, prescaler + 1))
        with m.If(tick):
            m.d.sync += ms.eq(Mux(ms == HEARTBEAT_MS - 1, 0, ms + 1))

        last_errors = Signal(32)
        error_ms = Signal(range(ERROR_HOLD_MS + 1))
        m.d.sync += last_errors.eq(self.adc_errors)
        with m.If(self.adc_errors != last_errors):
            m.d.sync += error_ms.eq(ERROR_HOLD_MS)
        with m.Elif(tick & (error_ms != 0)):
            m.d.sync += error_ms.eq(error_ms - 1)

        beat = Signal()
        m.d.comb += beat.eq(Cat(*[(ms >= a) & (ms < b) for a, b in BLINKS_MS]).any())
        fast = Signal()
        m.d.comb += fast.eq((ms // ERROR_BLINK_MS)[0] == 0)
        with m.If(error_ms != 0):
            m.d.comb += self.rgb.eq(Cat(fast, C(0, 2)))
        with m.Elif(self.host_active):
            m.d.comb += self.rgb.eq(Cat(C(0, 1), beat, C(0, 1)))
        with m.Else():
            m.d.comb += self.rgb.eq(Cat(C(0, 2), beat))
        return m
