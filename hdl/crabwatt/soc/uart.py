"""8N1 UART physical layer: bytes to a TX pin and an RX pin to bytes, at SYS_CLK / divisor baud."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ['UartPhy']


class UartPhy(wiring.Component):
    """`divisor` is sys clock cycles per bit (at least 4). `tx_pin` idles high. The receiver samples
    the middle of each bit after a start edge and drops a byte whose stop bit is low (framing error)."""

    def __init__(self):
        super().__init__({
            'divisor': In(16),
            'tx': In(stream.Signature(8)),
            'rx': Out(stream.Signature(8)),
            'tx_pin': Out(1, init=1),
            'rx_pin': In(1, init=1),
            'framing_errors': Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        # Transmitter: start bit, 8 data bits LSB first, stop bit, as one 10-bit shift register.
        tx_shift = Signal(10, init=0x3FF)
        tx_bits = Signal(range(11))
        tx_timer = Signal(16)
        m.d.comb += self.tx.ready.eq(tx_bits == 0)
        with m.If(tx_bits == 0):
            with m.If(self.tx.valid):
                m.d.sync += [tx_shift.eq(Cat(C(0, 1), self.tx.payload, C(1, 1))), tx_bits.eq(10),
                             tx_timer.eq(self.divisor - 1)]
        with m.Elif(tx_timer == 0):
            m.d.sync += [tx_shift.eq(Cat(tx_shift[1:], C(1, 1))), tx_bits.eq(tx_bits - 1),
                         tx_timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += tx_timer.eq(tx_timer - 1)
        m.d.comb += self.tx_pin.eq(Mux(tx_bits == 0, 1, tx_shift[0]))

        # Receiver.
        rx = Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx_pin, rx, init=1)
        rx_shift = Signal(8)
        rx_bits = Signal(range(10))
        rx_timer = Signal(16)
        m.d.sync += self.rx.valid.eq(0)
        with m.FSM():
            with m.State('IDLE'):
                with m.If(~rx):
                    m.d.sync += rx_timer.eq(self.divisor >> 1)
                    m.next = 'START'
            with m.State('START'):
                with m.If(rx_timer == 0):
                    with m.If(rx):    # a glitch, not a start bit
                        m.next = 'IDLE'
                    with m.Else():
                        m.d.sync += [rx_timer.eq(self.divisor - 1), rx_bits.eq(0)]
                        m.next = 'DATA'
                with m.Else():
                    m.d.sync += rx_timer.eq(rx_timer - 1)
            with m.State('DATA'):
                with m.If(rx_timer == 0):
                    m.d.sync += [rx_timer.eq(self.divisor - 1), rx_bits.eq(rx_bits + 1)]
                    with m.If(rx_bits == 8):
                        with m.If(rx):
                            m.d.sync += [self.rx.payload.eq(rx_shift), self.rx.valid.eq(1)]
                        with m.Elif(self.framing_errors != 0xFFFF):
                            m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                        m.next = 'WAIT_IDLE'
                    with m.Else():
                        m.d.sync += rx_shift.eq(Cat(rx_shift[1:], rx))
                with m.Else():
                    m.d.sync += rx_timer.eq(rx_timer - 1)
            with m.State('WAIT_IDLE'):
                with m.If(rx):
                    m.next = 'IDLE'
        return m
