"""The SoC's USB link: LUNA's CDC-ACM device with crabwatt's fixes and additions (SET_CONTROL_LINE_STATE
acknowledged, a serial number, the IAD class triple, control transfers the host abandons, data
toggles restarted at a bus reset or SET_CONFIGURATION, `host_active`), and its wiring to the SoC's byte
channel. Used by the board's top (crabwatt.soc.top.SocTop) and the USB twin (crabwatt.soc.usbtwin).
Proven against a line-level full-speed host model in hdl/tests/test_usb_cdc.py and
test_usb_control_abort.py, and by Linux's own cdc_acm in the USB twin."""

from amaranth import *
from amaranth.lib.cdc import FFSynchronizer

__all__ = ['USB_CLK_HZ', 'USB_VID', 'USB_PID_CRABWATT', 'attach_usb_serial']

USB_CLK_HZ = 12_000_000
USB_VID = 0x1209
USB_PID_CRABWATT = 0x5AF1


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

