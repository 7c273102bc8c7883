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

__all__ = ['SocTop', 'BOARD_IDS', 'USB_CLK_HZ', 'attach_usb_serial']

USB_CLK_HZ = 12_000_000
#: BOARD enum of the protocol (server/protocol/definition.ts).
BOARD_IDS = {'r0.1': 1, 'r0.2': 2}
ADC_PART_AD7357 = 1
USB_VID = 0x1209
USB_PID_CRABWATT = 0x5AF1
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



class _RestartedEndpoint(Elaboratable):
    """A USB endpoint held in reset while `restart` is high."""
    def __init__(self, endpoint, restart):
        self.interface = endpoint.interface     # what LUNA's endpoint multiplexer takes
        self._endpoint = endpoint
        self._restart = restart

    def elaborate(self, platform):
        m = Module()
        m.submodules.endpoint = ResetInserter({'usb': self._restart})(self._endpoint)
        return m


def restarted_endpoint(number, endpoint, restart):
    """`endpoint` (number `number`) in reset while `restart` is high, as an instance of a class named
    Endpoint<number>. LUNA's USBDevice names each endpoint's submodule after its class and, when the
    name is taken, appends the Python id() of the object: two endpoints under plain ResetInserters
    (both TransformedElaboratable) gave the second a name that changed from run to run, so the
    netlist, and with it nextpnr's placement for a given seed, was not reproducible."""
    return type(f"Endpoint{number}", (_RestartedEndpoint,), {})(endpoint, restart)

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


def _usb_serial(bus):
    """LUNA's CDC-ACM device, plus `host_active`: start-of-frame packets arrive and the bus is not
    suspended, i.e. a host has the port enabled. (LUNA keeps the configuration state inside.)
    Proven against a line-level full-speed host model in hdl/tests/test_usb_cdc.py."""
    from luna.gateware.stream.generator import StreamSerializer
    from luna.gateware.usb.devices.acm import USBSerialDevice
    from luna.gateware.usb.stream import USBInStreamInterface
    from luna.gateware.usb.request.standard import StandardRequestHandler
    from luna.gateware.usb.usb2.control import USBControlEndpoint
    from luna.gateware.usb.usb2.request import USBRequestHandler
    from usb_protocol.types import USBRequestRecipient, USBRequestType

    class ControlLineStateHandler(USBRequestHandler):
        """Acknowledges the CDC SET_CONTROL_LINE_STATE (DTR/RTS) that hosts send on every open and
        close. LUNA stalls it; a host that treats the stall as an error cannot open the port."""
        SET_CONTROL_LINE_STATE = 0x22

        def elaborate(self, platform):
            m = Module()
            setup = self.interface.setup
            with m.If((setup.type == USBRequestType.CLASS) & (setup.request == self.SET_CONTROL_LINE_STATE)):
                m.d.comb += self.interface.claim.eq(1)
                with m.If(self.interface.status_requested):
                    m.d.comb += self.send_zlp()
            return m

    class LineCodingHandler(USBRequestHandler):
        """Answers the CDC GET_LINE_CODING (dwDTERate LE, bCharFormat, bParityType, bDataBits) with
        the 7 bytes of the last SET_LINE_CODING; 115200 8N1 before any and after a bus reset. LUNA
        stalls the GET, and Windows' usbser.sys (and some serial libraries) ask for it when opening
        the port, where a stall can fail the open. The rate means nothing to a USB-native device;
        it is kept because a host that reads back what it set expects to find it.

        LUNA's own handler still answers the SET (the request multiplexer takes one claim at a
        time, two claims would make it stall), so this one only listens to the SET's data stage. A
        packet's bytes are kept once its CRC16 has checked out (LUNA streams them before it), and
        only if it held exactly 7: LUNA acknowledges a malformed SET too, which then changes
        nothing."""
        SET_LINE_CODING, GET_LINE_CODING = 0x20, 0x21
        LENGTH = 7
        DEFAULT = bytes([0x00, 0xC2, 0x01, 0x00, 0, 0, 8])      # 115200 baud, 1 stop bit, no parity, 8 bits

        def __init__(self):
            super().__init__()
            self.bus_reset = Signal()       # in: the host reset the bus, back to DEFAULT

        def elaborate(self, platform):
            m = Module()
            interface = self.interface
            setup = interface.setup
            default = int.from_bytes(self.DEFAULT, 'little')
            coding = Signal(8 * self.LENGTH, init=default)
            incoming = Signal(8 * self.LENGTH)
            # Bytes of the current data packet, saturating past LENGTH so a longer one is refused.
            incoming_bytes = Signal(range(self.LENGTH + 2))

            is_set = ((setup.type == USBRequestType.CLASS) & ~setup.is_in_request &
                      (setup.request == self.SET_LINE_CODING))
            with m.If(is_set & interface.rx.next):
                m.d.usb += incoming.eq(Cat(incoming[8:], interface.rx.payload))
                with m.If(incoming_bytes != self.LENGTH + 1):
                    m.d.usb += incoming_bytes.eq(incoming_bytes + 1)
            with m.If(is_set & interface.rx_ready_for_response & (incoming_bytes == self.LENGTH)):
                m.d.usb += coding.eq(incoming)
            # Every packet ends in either strobe (the CRC checked or not); a new SETUP abandons one.
            with m.If(interface.rx_ready_for_response | interface.rx_invalid | setup.received):
                m.d.usb += incoming_bytes.eq(0)
            with m.If(self.bus_reset):
                m.d.usb += coding.eq(default)

            # wLength 0 is left to the fallback handler's stall: there is no data stage to answer in.
            is_get = ((setup.type == USBRequestType.CLASS) & setup.is_in_request &
                      (setup.recipient == USBRequestRecipient.INTERFACE) &
                      (setup.request == self.GET_LINE_CODING) & (setup.length != 0))
            # A short read (wLength < 7) gets the first wLength bytes; a longer one gets 7, a short
            # packet that ends the data stage. Clamped here so the serializer counts in 3 bits.
            m.submodules.transmitter = transmitter = StreamSerializer(
                data_length=self.LENGTH, domain='usb', stream_type=USBInStreamInterface,
                max_length_width=self.LENGTH.bit_length())
            m.d.comb += [transmitter.data[n].eq(coding.word_select(n, 8)) for n in range(self.LENGTH)]
            m.d.comb += transmitter.max_length.eq(Mux(setup.length > self.LENGTH, self.LENGTH, setup.length))
            with m.If(is_get):
                m.d.comb += [interface.claim.eq(1), transmitter.stream.attach(interface.tx)]
                # Asked again (the host lost our data packet), the serializer starts over; the
                # data stage is one packet, whose PID stays DATA1 (tx_data_pid's reset value).
                with m.If(interface.data_requested):
                    m.d.comb += transmitter.start.eq(1)
                with m.If(interface.status_requested):
                    m.d.comb += interface.handshakes_out.ack.eq(1)
            return m

    class SetConfigurationWatch(USBRequestHandler):
        """Claims nothing; `seen` strobes when a SET_CONFIGURATION arrives (the standard handler
        answers it)."""
        def __init__(self):
            super().__init__()
            self.seen = Signal()

        def elaborate(self, platform):
            m = Module()
            setup = self.interface.setup
            m.d.comb += self.seen.eq(setup.received & (setup.type == USBRequestType.STANDARD) &
                                     (setup.request == 9) & (setup.recipient == 0))
            return m

    class SerialNumberDescriptor(Elaboratable):
        """The iSerialNumber string descriptor, made at run time from `serial` (64 bits, stable while
        the host reads it): 16 upper-case hex digits, most significant first, in UTF-16LE. Has the
        interface LUNA's GetDescriptorHandlerDistributed expects of a descriptor generator."""
        DIGITS = 16
        LENGTH = 2 + 2 * DIGITS

        def __init__(self, serial):
            self._serial = serial
            self._serializer = StreamSerializer(data_length=self.LENGTH, domain='usb',
                                                stream_type=USBInStreamInterface, max_length_width=16)
            self.start, self.max_length, self.start_position = Signal(), Signal(16), Signal(11)
            self.stream = self._serializer.stream

        def elaborate(self, platform):
            m = Module()
            m.submodules.serializer = serializer = self._serializer
            # 34 bytes fit one packet, so start_position (the packet's offset) is always 0.
            m.d.comb += [serializer.start.eq(self.start), serializer.max_length.eq(self.max_length),
                         serializer.data[0].eq(self.LENGTH), serializer.data[1].eq(3)]
            for k in range(self.DIGITS):
                nibble = self._serial[4 * (self.DIGITS - 1 - k):][:4]
                m.d.comb += [serializer.data[2 + 2 * k].eq(Mux(nibble < 10, ord('0') + nibble, ord('A') - 10 + nibble)),
                             serializer.data[3 + 2 * k].eq(0)]
            return m

    class CrabwattSerial(USBSerialDevice):
        def __init__(self):
            super().__init__(bus=bus, idVendor=USB_VID, idProduct=USB_PID_CRABWATT,
                             manufacturer_string='crabwatt', product_string='crabwatt energy monitor')
            self.host_active = Signal()
            # In (usb domain): the board's serial number (the flash's unique ID, set by the firmware),
            # and `serial_valid` once it is; the device attaches to the bus only then.
            self.serial_number = Signal(64)
            self.serial_valid = Signal()

        def create_descriptors(self):
            descriptors = super().create_descriptors()
            strings = [index for kind, index, _ in descriptors if kind == 3]
            serial_index = max(strings) + 1
            descriptors.add_descriptor(lambda: SerialNumberDescriptor(self.serial_number),
                                       index=serial_index, descriptor_type=3)
            # The configuration groups its two CDC interfaces with an interface association, which
            # the IAD ECN requires announcing in the device descriptor as class EF/02/01
            # (LUNA leaves 00/00/00; Windows' composite driver honours IADs only under EF/02/01).
            device = descriptors.get_descriptor_bytes(1)
            patched = bytearray(device)
            patched[4:7] = bytes([0xEF, 0x02, 0x01])
            patched[16] = serial_index          # iSerialNumber: two boards are two devices to the host
            descriptors.add_descriptor(bytes(patched), descriptor_type=1)
            return descriptors

        def elaborate(self, platform):
            m = super().elaborate(platform)
            usb = m.submodules.usb
            control = usb._endpoints[0]     # LUNA 0.2.3 adds the control endpoint first
            assert isinstance(control, USBControlEndpoint)
            control.add_request_handler(ControlLineStateHandler())
            line_coding = LineCodingHandler()
            control.add_request_handler(line_coding)
            m.d.comb += line_coding.bus_reset.eq(usb.reset_detected)
            set_configuration = SetConfigurationWatch()
            control.add_request_handler(set_configuration)
            # A SETUP aborts the control transfer in progress (USB 2.0 8.5.3), and a bus reset every
            # one; LUNA's standard handler leaves GET_DESCRIPTOR only at its status stage, so a read
            # the host abandons (Linux does after a descriptor error, or by resetting the port) left it
            # there: the next request's data came from the old offset with the old toggle, or STALLed.
            # Linux's USBDEVFS_RESET found it in the USB twin ("usb 1-1: reset full-speed USB device
            # number 2", then "PID fails its check nibble: 0012010002ef…", re-probed as ttyACM1).
            # Back to IDLE at each SETUP token to endpoint 0 (it precedes the request's data packet).
            token = control.interface.tokenizer
            abort = usb.reset_detected | (token.new_token & token.is_setup & (token.endpoint == 0))
            handlers = control._request_handlers
            standard = [n for n, h in enumerate(handlers) if isinstance(h, StandardRequestHandler)]
            assert len(standard) == 1
            handlers[standard[0]] = ResetInserter({'usb': abort})(handlers[standard[0]])
            # After a bus reset or a SET_CONFIGURATION the host starts every pipe at DATA0 (USB 2.0
            # 9.1.1.5, 9.4.5), but LUNA's stream endpoints keep their toggles: re-enumerated while
            # powered (host reboot, port reset) or reconfigured (libusb), the first packet each way
            # would be taken for a repeat and dropped. Restarting the data endpoints also drops a
            # half-sent packet, which the host has abandoned anyway (COBS resynchronises at 0x00).
            restart = usb.reset_detected | set_configuration.seen
            for n in range(1, len(usb._endpoints)):
                usb._endpoints[n] = restarted_endpoint(n, usb._endpoints[n], restart)
            # A full-speed host sends a SOF every 1 ms; 3 ms without one means no host.
            limit = 3 * USB_CLK_HZ // 1000
            silence = Signal(range(limit + 1), init=limit)
            with m.If(usb.sof_detected):
                m.d.usb += silence.eq(0)
            with m.Elif(silence != limit):
                m.d.usb += silence.eq(silence + 1)
            m.d.comb += self.host_active.eq(~usb.suspended & (silence != limit))
            return m

    return CrabwattSerial()


def _wire_usb_serial(m, serial, *, tx, rx):
    """The SoC's byte channel (`tx`: to the host, `rx`: from it; amaranth streams in the `usb`
    domain) onto LUNA's streams. The pull-up waits for the serial number: a host that enumerated the
    board without it would keep the wrong one."""
    m.d.comb += [
        serial.connect.eq(serial.serial_valid),
        serial.tx.payload.eq(tx.payload), serial.tx.valid.eq(tx.valid), tx.ready.eq(serial.tx.ready),
        # With `last` low LUNA sends only full 64-byte packets. Every protocol frame ends with
        # its 0x00 delimiter, so ending the USB transfer there sends each frame at once.
        serial.tx.first.eq(0), serial.tx.last.eq(tx.payload == 0),
        rx.payload.eq(serial.rx.payload), rx.valid.eq(serial.rx.valid), serial.rx.ready.eq(rx.ready),
    ]


def attach_usb_serial(m, soc, bus):
    """The SoC's USB link as on the board (also the USB twin's, crabwatt.soc.usbtwin): LUNA's
    CDC-ACM device on `bus` (the `usb` pin record), its byte channel, `host_active` and the serial
    number. `sync` is the power-on domain; returns the device (for its `host_active`)."""
    m.submodules.usb_serial = serial = _usb_serial(bus)
    _wire_usb_serial(m, serial, tx=soc.usb_tx, rx=soc.usb_rx)
    m.d.comb += soc.usb_configured.eq(serial.host_active)
    # The serial number lives in the power-on domain: a watchdog reset must not detach the
    # board from the host. Static once set, so the usb domain reads it directly, behind the
    # synchronised `valid`.
    usb_serial, usb_serial_set, usb_serial_valid = Signal(64), Signal(), Signal()
    with m.If(soc.usb_serial_stb & ~usb_serial_set):
        m.d.sync += [usb_serial.eq(soc.usb_serial), usb_serial_set.eq(1)]
    m.submodules.usb_serial_valid = FFSynchronizer(usb_serial_set, usb_serial_valid, o_domain='usb')
    m.d.comb += [serial.serial_number.eq(usb_serial), serial.serial_valid.eq(usb_serial_valid)]
    return serial


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
