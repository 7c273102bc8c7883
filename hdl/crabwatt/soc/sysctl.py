"""Uptime timer, cycle counter, watchdog, and the reset controller that survives watchdog resets."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import regmap

__all__ = ['Timer', 'Watchdog', 'ResetController']


class Timer(wiring.Component):
    """`uptime_ms` counts milliseconds of the `sys_clk_hz` clock; `cycles` counts clock cycles."""

    uptime_ms: Out(32)
    cycles: Out(64)

    def __init__(self, sys_clk_hz: int):
        if sys_clk_hz % 1000:
            raise ValueError('the uptime timer needs a clock that is a whole number of kHz')
        self._cycles_per_ms = sys_clk_hz // 1000
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        prescaler = Signal(range(self._cycles_per_ms))
        m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(prescaler == self._cycles_per_ms - 1):
            m.d.sync += [prescaler.eq(0), self.uptime_ms.eq(self.uptime_ms + 1)]
        with m.Else():
            m.d.sync += prescaler.eq(prescaler + 1)
        return m


class Watchdog(wiring.Component):
    """Counts milliseconds (`tick_ms` pulses) since the last kick; `fire` pulses when that reaches
    `timeout_ms`. A timeout of 0 disables it. Writing the timeout also counts as a kick, so enabling
    the watchdog never fires at once. Only `regmap.WDT_KICK_KEY` kicks: a runaway store of some other
    value does not keep a hung firmware alive."""

    timeout_ms: In(16)
    timeout_written: In(1)
    kick_stb: In(1)
    kick_data: In(32)
    tick_ms: In(1)
    fire: Out(1)

    def elaborate(self, platform):
        m = Module()
        elapsed_ms = Signal(16)
        kick = (self.kick_stb & (self.kick_data == regmap.WDT_KICK_KEY)) | self.timeout_written
        with m.If(kick | (self.timeout_ms == 0)):
            m.d.sync += elapsed_ms.eq(0)
        with m.Elif(self.tick_ms):
            m.d.sync += elapsed_ms.eq(elapsed_ms + 1)
        m.d.comb += self.fire.eq((self.timeout_ms != 0) & (elapsed_ms >= self.timeout_ms) & ~kick)
        return m


class ResetController(wiring.Component):
    """Lives in the power-on domain (instantiate it where `sync` is reset only at power-on or
    configuration, e.g. under a DomainRenamer). Holds the rest of the SoC in
    reset for `stretch` cycles after a watchdog `fire`, and remembers why the CPU last started and how
    often the watchdog bit."""

    fire: In(1)
    soc_reset: Out(1)
    cause_watchdog: Out(1)
    wdt_resets: Out(16)

    def __init__(self, stretch: int = 16):
        self._stretch = stretch
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(self._stretch + 1))
        with m.If(self.fire & (count == 0)):
            m.d.sync += [count.eq(self._stretch), self.cause_watchdog.eq(1)]
            with m.If(self.wdt_resets != 0xFFFF):
                m.d.sync += self.wdt_resets.eq(self.wdt_resets + 1)
        with m.Elif(count != 0):
            m.d.sync += count.eq(count - 1)
        m.d.comb += self.soc_reset.eq(count != 0)
        return m
