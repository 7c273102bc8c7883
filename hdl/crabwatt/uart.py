"""UartTx: an 8N1 transmitter for a byte stream (LSB first, one stop bit).

`divisor` system clock cycles per bit. Used by the standalone top's result dumper; the SoC has its
own CSR UART.
"""
from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out


class UartTx(wiring.Component):
    """Ports: bytes (stream of 8-bit payloads), tx (the line, idle high)."""
    bytes: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor):
        if divisor < 2:
            raise ValueError(f"UART divisor must be at least 2 cycles per bit, not {divisor}")
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10, init=0x3FF)    # start bit, 8 data bits, stop bit; shifted out LSB first
        bits_left = Signal(range(11))
        timer = Signal(range(self._divisor))
        m.d.comb += [self.tx.eq(shift[0]), self.bytes.ready.eq(bits_left == 0)]
        with m.If(self.bytes.valid & self.bytes.ready):
            m.d.sync += [shift.eq(Cat(0, self.bytes.payload, 1)), bits_left.eq(10),
                         timer.eq(self._divisor - 1)]
        with m.Elif(bits_left != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], 1)), bits_left.eq(bits_left - 1),
                             timer.eq(self._divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UartRx(wiring.Component):
    """8N1 receiver: `rx` is the line (already synchronised); bytes come out as a stream that
    is not back-pressured (a byte arriving while the previous one is still valid replaces it)."""
    rx: In(1, init=1)
    bytes: Out(stream.Signature(8))

    def __init__(self, divisor):
        if divisor < 4:
            raise ValueError(f"UART divisor must be at least 4 cycles per bit, not {divisor}")
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor * 3 // 2 + 1))
        bits = Signal(range(10))
        shift = Signal(8)
        with m.If(self.bytes.ready):
            m.d.sync += self.bytes.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~self.rx):
                    # Sample mid-bit: 1.5 bit times after the start edge is the first data bit.
                    m.d.sync += [timer.eq(self._divisor * 3 // 2 - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], self.rx)), bits.eq(bits + 1),
                                 timer.eq(self._divisor - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(self.rx):      # a framing error drops the byte
                        m.d.sync += [self.bytes.payload.eq(shift), self.bytes.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m
