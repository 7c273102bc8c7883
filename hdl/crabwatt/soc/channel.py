"""A byte channel between the CPU and a link (UART or USB): a transmit and a receive FIFO, and their
registers (TX, TX_FREE, RX, RX_POP, RX_OVERRUNS of the UART and USB blocks in `regmap`)."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import AsyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ['ByteChannel']


class ByteChannel(wiring.Component):
    """`tx` carries bytes from the CPU to the link, `rx` from the link to the CPU; both live in
    `link_domain` (an async FIFO crosses when it is not `sync`).

    With `drop_when_full` the receive side never back-pressures the link (a UART cannot wait): a byte
    arriving at a full FIFO is dropped and counted. Otherwise `rx.ready` follows the FIFO (USB NAKs).
    """

    def __init__(self, *, tx_depth: int = 256, rx_depth: int = 64, link_domain: str = 'sync',
                 drop_when_full: bool = True):
        self._tx_depth, self._rx_depth = tx_depth, rx_depth
        self._link_domain, self._drop = link_domain, drop_when_full
        super().__init__({
            'tx': Out(stream.Signature(8)),
            'rx': In(stream.Signature(8)),
            # CPU side
            'tx_data': In(8), 'tx_stb': In(1), 'tx_free': Out(16),
            'rx_data': Out(8), 'rx_valid': Out(1), 'rx_pop': In(1),
            'rx_overruns': Out(16),
        })

    def elaborate(self, platform):
        m = Module()
        if self._link_domain == 'sync':
            tx_fifo = SyncFIFOBuffered(width=8, depth=self._tx_depth)
            rx_fifo = SyncFIFOBuffered(width=8, depth=self._rx_depth)
            rx_count_domain = m.d.sync
        else:
            tx_fifo = AsyncFIFO(width=8, depth=self._tx_depth, r_domain=self._link_domain, w_domain='sync')
            rx_fifo = AsyncFIFO(width=8, depth=self._rx_depth, r_domain='sync', w_domain=self._link_domain)
            rx_count_domain = m.d[self._link_domain]
        m.submodules.tx_fifo, m.submodules.rx_fifo = tx_fifo, rx_fifo

        m.d.comb += [
            tx_fifo.w_data.eq(self.tx_data), tx_fifo.w_en.eq(self.tx_stb),
            self.tx_free.eq(tx_fifo.depth - tx_fifo.w_level),
            self.tx.payload.eq(tx_fifo.r_data), self.tx.valid.eq(tx_fifo.r_rdy), tx_fifo.r_en.eq(self.tx.ready),
            rx_fifo.w_data.eq(self.rx.payload), rx_fifo.w_en.eq(self.rx.valid),
            self.rx_data.eq(rx_fifo.r_data), self.rx_valid.eq(rx_fifo.r_rdy), rx_fifo.r_en.eq(self.rx_pop),
        ]
        if self._drop:
            m.d.comb += self.rx.ready.eq(1)
            if self._link_domain != 'sync':
                raise ValueError('dropping and counting overruns is only for a link in the sync domain')
            with m.If(self.rx.valid & ~rx_fifo.w_rdy & (self.rx_overruns != 0xFFFF)):
                rx_count_domain += self.rx_overruns.eq(self.rx_overruns + 1)
        else:
            m.d.comb += self.rx.ready.eq(rx_fifo.w_rdy)
        return m
