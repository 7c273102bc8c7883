"""CrabwattTop: the standalone gateware for the OrangeCrab with the AD7357 wing.

    48 MHz osc --> EHXPLLL --> adc (72 MHz: SCLK and the serial capture)
                          `--> sync (48 MHz: DSP, capture buffer, result dump)

    AD7357 pins <-> DDR/FF buffers <-> AdcCapture --async FIFO--> PowerDsp --> windows --+
                                                                     `--> CaptureBuffer -+-> ResultDump -> UART TX

Until the SoC (hdl/crabwatt/soc/) takes over, results leave on the Feather TX pin at 3 Mbaud
(8N1): each window record as 0xA5 0x5A + WindowLayout bytes (LSB first), and each raw capture
(IMMEDIATE, re-armed after every dump) as 0xC5 0x5C + pairs x (v, i) little-endian int16.
The Feather RX pin takes a configuration: 0xC0 then the ConfigLayout bytes (LSB first); the last
byte stages it and commits it (docs/dsp.md).

To grow this into the SoC: keep `CrabClocks`, `AdcFrontEnd`, `PowerDsp` and `CaptureBuffer`;
replace `ResultDump` by the CSR block (staging/commit/config_seq, the windows stream into the
result FIFO, the capture ports).
"""
from amaranth import *
from amaranth.build import Resource, Subsignal, Pins, PinsN, Attrs
from amaranth.lib import io, wiring, stream
from amaranth.lib.cdc import ResetSynchronizer, FFSynchronizer
from amaranth.lib.wiring import In, Out

from .adc import AdcCapture, DEFAULT_READ_DELAY, READ_DELAY_BITS, READ_STEPS
from .adc_phase import PhaseStepper, read_clock_pll_args
from .capture import CaptureBuffer, TRIGGER_IMMEDIATE
from .dsp import PowerDsp, WindowLayout, SampleLayout, ConfigLayout, CONFIG_RESET
from .uart import UartTx, UartRx

SYS_CLK_HZ = 48_000_000
ADC_CLK_HZ = 72_000_000
UART_BAUD = 3_000_000
CAPTURE_DEPTH = 4096

# The AD7357 wing on the Feather header: digital pins only, present on r0.1 and r0.2 alike
# (r0.1's A0-A5 go to its SAMD11, not to the FPGA). TX/RX (io 1/0) stay free for the UART.
ADC_WING_PINS = {"cs": "5", "sclk": "sck", "sdata_a": "cipo", "sdata_b": "6"}


def adc_wing_resource():
    conn = ("io", 0)
    return Resource(
        "ad7357", 0,
        Subsignal("cs", PinsN(ADC_WING_PINS["cs"], dir="o", conn=conn)),
        Subsignal("sclk", Pins(ADC_WING_PINS["sclk"], dir="o", conn=conn)),
        Subsignal("sdata", Pins(f"{ADC_WING_PINS['sdata_a']} {ADC_WING_PINS['sdata_b']}",
                                dir="i", conn=conn)),
        Attrs(IO_TYPE="LVCMOS33", SLEWRATE="FAST"))


def uart_resources():
    return [Resource("feather_tx", 0, Pins("1", dir="o", conn=("io", 0)), Attrs(IO_TYPE="LVCMOS33")),
            Resource("feather_rx", 0, Pins("0", dir="i", conn=("io", 0)), Attrs(IO_TYPE="LVCMOS33"))]


class ConfigLoader(wiring.Component):
    """0xC0 + ConfigLayout bytes (LSB first) on a byte stream -> staging registers + commit."""
    bytes: In(stream.Signature(8))
    staging: Out(ConfigLayout(), init=CONFIG_RESET)
    commit: Out(1)

    CONFIG_BYTES = (ConfigLayout().size + 7) // 8

    def elaborate(self, platform):
        m = Module()
        buf = Signal(self.CONFIG_BYTES * 8)
        got = Signal(range(self.CONFIG_BYTES + 1))
        receiving = Signal()
        m.d.comb += self.bytes.ready.eq(1)
        m.d.sync += self.commit.eq(0)
        with m.If(self.bytes.valid):
            with m.If(~receiving):
                with m.If(self.bytes.payload == 0xC0):
                    m.d.sync += [receiving.eq(1), got.eq(0)]
            with m.Else():
                m.d.sync += [buf.eq(Cat(buf[8:], self.bytes.payload)), got.eq(got + 1)]
                with m.If(got == self.CONFIG_BYTES - 1):
                    m.d.sync += [self.staging.eq(Cat(buf[8:], self.bytes.payload)),
                                 self.commit.eq(1), receiving.eq(0)]
        return m


class CrabClocks(Elaboratable):
    """EHXPLLL from the 48 MHz oscillator: VCO 576 MHz, CLKOP 72 MHz (adc), CLKOS 48 MHz (sync),
    CLKOS3 72 MHz (adc_rd, the ADC read register) stepped to DEFAULT_READ_DELAY's phase.

    Both domains stay in reset until the PLL locks (then released synchronously). The owner
    defines the `sync` and `adc` domains; this drives their clocks and resets and defines `adc_rd`.
    `read_phase_settled`: the read clock has reached that phase (the ADC front end numbers no sample before).
    """
    def __init__(self):
        self.read_phase_settled = Signal()

    def elaborate(self, platform):
        m = Module()
        clk48 = platform.request("clk", 0, dir="-")
        m.submodules.clk_buf = clk_buf = io.Buffer("i", clk48)
        locked = Signal()
        clk_adc = Signal()
        clk_sys = Signal()
        clk_adc_rd = Signal()
        m.domains.adc_rd = ClockDomain("adc_rd", reset_less=True)
        m.submodules.read_phase = stepper = PhaseStepper()
        m.d.comb += [stepper.target.eq(DEFAULT_READ_DELAY % READ_STEPS), self.read_phase_settled.eq(stepper.settled)]
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI="48", a_FREQUENCY_PIN_CLKOP="72", a_FREQUENCY_PIN_CLKOS="48",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=2, p_CLKFB_DIV=3, p_FEEDBK_PATH="CLKOP",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=8, p_CLKOP_CPHASE=7, p_CLKOP_FPHASE=0,
            p_CLKOS_ENABLE="ENABLED", p_CLKOS_DIV=12, p_CLKOS_CPHASE=11, p_CLKOS_FPHASE=0,
            i_CLKI=clk_buf.i, i_CLKFB=clk_adc, i_RST=0, i_STDBY=0,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, i_ENCLKOS=0,
            o_CLKOP=clk_adc, o_CLKOS=clk_sys, o_LOCK=locked,
            **read_clock_pll_args(stepper, clk_adc_rd, mhz=72, div=8))
        m.d.comb += [ClockSignal("adc").eq(clk_adc), ClockSignal("sync").eq(clk_sys),
                     ClockSignal("adc_rd").eq(clk_adc_rd)]
        m.submodules.rst_sync = ResetSynchronizer(~locked, domain="sync")
        m.submodules.rst_adc = ResetSynchronizer(~locked, domain="adc")
        # nextpnr derives both output constraints from the PLL parameters and the 48 MHz input.
        return m


class AdcFrontEnd(wiring.Component):
    """AdcCapture with its pin buffers: CS and SCLK through DDR outputs (equal latency), SDATA
    through an input register in `adc_rd` (the read clock, crabwatt.adc). `read_delay` (any
    domain, quasi-static) is the capture point, `read_settled` (any domain) says the read clock's phase
    has reached it. Ports as AdcCapture's system side."""
    samples: Out(stream.Signature(SampleLayout()))
    samples_dropped: Out(32)
    adc_errors: Out(32)
    read_delay: In(READ_DELAY_BITS, init=DEFAULT_READ_DELAY)
    read_settled: In(1, init=1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.capture = cap = AdcCapture()
        pins = platform.request("ad7357", 0, dir="-")
        m.submodules.cs = cs = io.DDRBuffer("o", pins.cs, o_domain="adc")
        m.submodules.sclk = sclk = io.DDRBuffer("o", pins.sclk, o_domain="adc")
        m.submodules.sdata = sdata = io.FFBuffer("i", pins.sdata, i_domain="adc_rd")
        m.submodules.read_delay_sync = FFSynchronizer(self.read_delay, cap.read_delay, o_domain="adc",
                                                      init=DEFAULT_READ_DELAY)
        m.d.comb += [
            cs.o[0].eq(~cap.cs_n), cs.o[1].eq(~cap.cs_n),     # the resource inverts (PinsN)
            sclk.o[0].eq(cap.sclk_en), sclk.o[1].eq(0),
            cap.sdata.eq(sdata.i), cap.read_settled.eq(self.read_settled),
        ]
        wiring.connect(m, wiring.flipped(self.samples), cap.samples)
        m.d.comb += [self.samples_dropped.eq(cap.samples_dropped), self.adc_errors.eq(cap.adc_errors)]
        return m


class ResultDump(wiring.Component):
    """Serialises window records and raw captures into bytes (see the module docstring).

    It takes every record at once, so the DSP never waits for the link: a record that arrives
    while another record or a capture is being sent is dropped and counted in `overflows`.
    """
    windows: In(stream.Signature(WindowLayout()))
    bytes: Out(stream.Signature(8))
    overflows: Out(32)

    RECORD_BYTES = (WindowLayout().size + 7) // 8

    def __init__(self, capture):
        self._capture = capture
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        cap = self._capture
        rec = Signal(self.RECORD_BYTES * 8)
        depth = cap.depth
        count = Signal(range(max(4 * depth, self.RECORD_BYTES) + 3))
        settling = Signal()
        m.d.comb += [cap.pairs.eq(depth), cap.trigger.eq(TRIGGER_IMMEDIATE),
                     cap.pretrigger.eq(0), cap.level.eq(0)]
        m.d.comb += self.windows.ready.eq(1)
        idle = Signal()
        with m.If(self.windows.valid & ~idle & (self.overflows != 0xFFFF_FFFF)):
            m.d.sync += self.overflows.eq(self.overflows + 1)
        with m.FSM():
            with m.State("ARM"):
                m.d.comb += cap.arm.eq(1)
                m.next = "IDLE"
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                with m.If(self.windows.valid):
                    m.d.sync += [rec.eq(self.windows.payload), count.eq(0)]
                    m.next = "WINDOW"
                with m.Elif(cap.done):
                    m.d.sync += [count.eq(0), cap.read_addr.eq(0)]
                    m.next = "CAPTURE"
            with m.State("WINDOW"):
                header = Mux(count == 0, 0xA5, 0x5A)
                m.d.comb += [self.bytes.valid.eq(1),
                             self.bytes.payload.eq(Mux(count < 2, header, rec[:8]))]
                with m.If(self.bytes.ready):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count >= 2):
                        m.d.sync += rec.eq(rec >> 8)
                    with m.If(count == self.RECORD_BYTES + 1):
                        m.next = "IDLE"
            with m.State("CAPTURE"):
                # Header, then 4 bytes per pair; read_addr moves ahead of the byte being sent.
                # read_data follows read_addr one cycle late: hold the stream for that cycle.
                pair_byte = count - 2
                word = Cat(cap.read_data.v, cap.read_data.i)
                m.d.sync += settling.eq(0)
                m.d.comb += [self.bytes.valid.eq(~settling),
                             self.bytes.payload.eq(Mux(count == 0, 0xC5, Mux(count == 1, 0x5C,
                                                       word.word_select(pair_byte[:2], 8))))]
                with m.If(self.bytes.valid & self.bytes.ready):
                    m.d.sync += count.eq(count + 1)
                    with m.If((count >= 2) & (pair_byte[:2] == 3)):
                        m.d.sync += [cap.read_addr.eq(cap.read_addr + 1), settling.eq(1)]
                    with m.If(count == 4 * depth + 1):
                        m.next = "ARM"
        return m


class CrabwattTop(Elaboratable):
    def elaborate(self, platform):
        m = Module()
        platform.add_resources([adc_wing_resource(), *uart_resources()])
        m.domains.sync = ClockDomain("sync")
        m.domains.adc = ClockDomain("adc")
        m.submodules.clocks = clocks = CrabClocks()
        m.submodules.adc = adc = AdcFrontEnd()
        m.d.comb += adc.read_settled.eq(clocks.read_phase_settled)
        m.submodules.dsp = dsp = PowerDsp()
        m.submodules.capture = cap = CaptureBuffer(depth=CAPTURE_DEPTH)
        m.submodules.dump = dump = ResultDump(cap)
        m.submodules.uart = uart = UartTx(SYS_CLK_HZ // UART_BAUD)
        wiring.connect(m, adc.samples, dsp.samples)
        wiring.connect(m, dsp.windows, dump.windows)
        wiring.connect(m, dump.bytes, uart.bytes)
        m.d.comb += [cap.sample.eq(dsp.calibrated), cap.sample_valid.eq(dsp.calibrated_valid)]
        m.submodules.uart_rx = uart_rx = UartRx(SYS_CLK_HZ // UART_BAUD)
        m.submodules.config = config = ConfigLoader()
        rx = platform.request("feather_rx", 0, dir="-")
        m.submodules.rx_buf = rx_buf = io.Buffer("i", rx)
        m.submodules.rx_sync = FFSynchronizer(rx_buf.i, uart_rx.rx, init=1)
        wiring.connect(m, uart_rx.bytes, config.bytes)
        m.d.comb += [dsp.staging.eq(config.staging), dsp.commit.eq(config.commit)]
        tx = platform.request("feather_tx", 0, dir="-")
        m.submodules.tx_buf = tx_buf = io.Buffer("o", tx)
        m.d.comb += tx_buf.o.eq(uart.tx)
        return m
