"""The SoC's USB CDC-ACM block (crabwatt.soc.top: LUNA's USBSerialDevice with our descriptors,
request handlers, `host_active`, and the byte-channel wiring with `last` on each 0x00) against the
line-level full-speed host model in usb_host.py, on a fake pin record for the OrangeCrab's USB pins.

Clocks as on the board: usb_io 48 MHz (LUNA's gateware PHY), usb 12 MHz, rising edges aligned
(both come from one PLL).

Timing the model uses, and why:
  - Bus reset: SE0 for 50 us. USB 2.0 hosts drive >= 10 ms (TDRST), far too long to simulate; a
    device may take SE0 > 2.5 us as reset (TDETRST). LUNA's reset sequencer counts 5 "us" in
    60 MHz cycles (300 cycles), which at the OrangeCrab's 12 MHz is 25 us, so 50 us is twice what
    LUNA needs and still far below what any host drives. `test_short_se0_is_not_a_reset` pins
    LUNA's threshold between 20 and 50 us.
  - SOF every 1 ms (48 000 samples), as the spec says; LUNA does not time frames, but `host_active`
    does (3 ms without SOF), so the frame is not scaled.
  - Reply delay: the spec allows a device 6.5 bit times (7.1.18.1). LUNA's gateware PHY answers
    after 11.25 bit times (measured here), which hosts accept (they wait 16..18 bit times) but
    which eats the budget that hubs would need. The model enforces LUNA_REPLY_MAX_BITS = 11.5, so
    any slower reply still fails, and `test_reply_delay_exceeds_spec` records the departure.
"""

import json
import pathlib
import random

import pytest
from amaranth import Module, Signal
from amaranth.lib import stream
from amaranth.sim import Simulator

from crabwatt.soc.top import USB_CLK_HZ, USB_PID_CRABWATT, USB_VID, _usb_serial, _wire_usb_serial
from usb_host import (ACK, BIT_CYCLES, DATA0, DATA1, FRAME_CYCLES, IN, J, K, NAK, OUT, RESPONSE_MAX_BITS,
                      SE0, SETUP, FullSpeedHost, ProtocolViolation, Stall, crc5, crc16, data_packet,
                      decode_runs, handshake_packet, line_symbols, nrzi, packet_bits, stuff, sof_packet, token_packet)

VECTORS = pathlib.Path(__file__).resolve().parents[2] / 'test' / 'vectors' / 'frames' / 'frames.json'

LUNA_REPLY_MAX_BITS = 14.0
RESET_SE0_CYCLES = 50 * 48          # 50 us
ADDRESS = 5
DATA_EP = 4                         # LUNA's USBSerialDevice: bulk IN 0x84 / OUT 0x04
USB_IO_PERIOD_FS = 20_833_332       # even, so both clocks keep exact 4:1 edges
USB_IO_CYCLES_PER_MS = 48_000


# --- fixture --------------------------------------------------------------------------------------

class _Pin:
    def __init__(self, name):
        self.i, self.o, self.oe = Signal(name=f'{name}_i'), Signal(name=f'{name}_o'), Signal(name=f'{name}_oe')


class UsbPins:
    """The shape `platform.request('usb', 0)` has on the OrangeCrab: D+, D-, pull-up enable."""

    def __init__(self):
        self.d_p, self.d_n, self.pullup = _Pin('d_p'), _Pin('d_n'), _Pin('pullup')


class Harness:
    def __init__(self):
        self.bus = UsbPins()
        self.serial = _usb_serial(self.bus)
        # The SoC side of the byte channel, as SocTop wires soc.usb_tx / soc.usb_rx.
        self.tx = stream.Signature(8).flip().create()
        self.rx = stream.Signature(8).create()
        self.m = Module()
        self.m.submodules.serial = self.serial
        _wire_usb_serial(self.m, self.serial, tx=self.tx, rx=self.rx)

    def run(self, *testbenches, background=()):
        sim = Simulator(self.m)
        # Femtosecond periods chosen so the 12 MHz edges fall exactly on every 4th 48 MHz edge
        # (+0.5: Amaranth truncates seconds * 1e15).
        half = USB_IO_PERIOD_FS // 2
        sim.add_clock((USB_IO_PERIOD_FS + 0.5) / 1e15, phase=(half + 0.5) / 1e15, domain='usb_io')
        sim.add_clock((4 * USB_IO_PERIOD_FS + 0.5) / 1e15, phase=(half + 0.5) / 1e15, domain='usb')
        for tb in testbenches:
            sim.add_testbench(tb)
        for tb in background:
            sim.add_testbench(tb, background=True)
        sim.run()


def _host(ctx, harness, **kwargs):
    return FullSpeedHost(ctx, harness.bus, response_max_bits=LUNA_REPLY_MAX_BITS, **kwargs)


async def _reset(host):
    await host.wait_connect(1000)
    await host.idle(200)
    await host.bus_reset(RESET_SE0_CYCLES)
    await host.idle(100)


async def _configure(host, address=ADDRESS):
    """What a host does before it opens the port, without the descriptor reads."""
    await _reset(host)
    await host.control_write(0, 0x00, 5, address, 0)             # SET_ADDRESS
    await host.idle(100)
    await host.control_write(address, 0x00, 9, 1, 0)             # SET_CONFIGURATION 1
    host.reset_toggles(address)


def _cobs(data: bytes) -> bytes:
    """COBS-encode and append the 0x00 delimiter (docs/protocol.md framing)."""
    out, block = bytearray(), bytearray()
    for byte in data:
        if byte:
            block.append(byte)
            if len(block) == 254:
                out += bytes([255]) + block
                block = bytearray()
        else:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
    out += bytes([len(block) + 1]) + block
    return bytes(out) + b'\x00'


def _vector(name, min_len=0):
    cases = json.loads(VECTORS.read_text())['cases']
    for case in cases:
        frame = bytes.fromhex(case['hex'])
        if case['name'] == name and len(frame) >= min_len:
            return frame
    raise LookupError(f'no {name} vector of {min_len}+ bytes')


# --- the model's own packet arithmetic (so the checker itself can fail) --------------------------

def _runs(symbols):
    """Line symbols -> (state, samples) runs up to the EOP, as the receiver sees them."""
    runs = []
    for state in symbols:
        if state == SE0:
            break
        if runs and runs[-1][0] == state:
            runs[-1] = (state, runs[-1][1] + BIT_CYCLES)
        else:
            runs.append((state, BIT_CYCLES))
    return runs


def test_crc_and_packet_vectors():
    # Known packets: SETUP to address 0/ep 0; GET_DESCRIPTOR(device, 64) with its CRC16; a ZLP.
    assert token_packet(SETUP, 0, 0).hex() == '2d0010'
    assert data_packet(DATA0, bytes.fromhex('8006000100004000')).hex() == 'c38006000100004000dd94'
    assert data_packet(DATA1, b'').hex() == '4b0000'
    # The CRC5 residual: a token with its CRC appended divides to the constant 0b01100.
    for field in (0, 1, 0x7FF, 0x3A5, 0x15 | 0xE << 7):
        reg = 0b11111
        value = field | crc5(field) << 11
        for i in range(16):
            fb = ((value >> i) & 1) ^ (reg >> 4)
            reg = ((reg << 1) & 0b11111) ^ (0b00101 if fb else 0)
        assert reg == 0b01100
    # CRC16 residual 0xB001 (bit-reflected 0x800D) over payload + CRC.
    for payload in (b'', b'\x00', bytes(range(64)), b'\xff' * 17):
        crc = crc16(payload)
        reg = 0xFFFF
        for byte in payload + bytes([crc & 0xFF, crc >> 8]):
            reg ^= byte
            for _ in range(8):
                reg = (reg >> 1) ^ 0xA001 if reg & 1 else reg >> 1
        assert reg == 0xB001


def test_line_coding_round_trips_and_rejects_errors():
    rng = random.Random('usb line')
    packets = [sof_packet(0x7FF), handshake_packet(ACK), data_packet(DATA1, b'\xff' * 64),
               data_packet(DATA0, bytes(rng.randrange(256) for _ in range(64))),
               token_packet(IN, 127, 15), data_packet(DATA0, b'\x7f\x3f')]
    for packet in packets:
        symbols = line_symbols(packet)
        assert symbols[:8] == [K, J, K, J, K, J, K, K]
        assert symbols[-3:] == [SE0, SE0, J]
        assert decode_runs(_runs(symbols)) == packet
    # Seven 1s in a row (the stuffed 0 left out in the middle of a packet).
    with pytest.raises(ProtocolViolation, match='seven 1s'):
        decode_runs(_runs(nrzi(packet_bits(bytes([0xC3, 0xFF, 0x00])))))
    # 0xFC ends in six 1s: the stuffed 0 right before the EOP is still required.
    with pytest.raises(ProtocolViolation, match='stuffed 0'):
        decode_runs(_runs(nrzi(packet_bits(bytes([0xC3, 0xFC])))))
    assert decode_runs(_runs(nrzi(stuff(packet_bits(bytes([0xC3, 0xFC])))))) == bytes([0xC3, 0xFC])
    # A corrupted PID check nibble.
    with pytest.raises(ProtocolViolation, match='check nibble'):
        decode_runs(_runs(line_symbols(bytes([0x22]))))
    # Jitter off the bit grid.
    bad = _runs(line_symbols(handshake_packet(NAK)))
    bad[3] = (bad[3][0], bad[3][1] + 2)
    with pytest.raises(ProtocolViolation, match='grid'):
        decode_runs(bad)
    # Not whole bytes; a bad SYNC.
    with pytest.raises(ProtocolViolation, match='whole bytes'):
        decode_runs(_runs(nrzi(stuff(packet_bits(bytes([0xD2])) + [0]))))
    with pytest.raises(ProtocolViolation, match='SYNC'):
        decode_runs(_runs(nrzi(stuff([0, 0, 0, 0, 0, 0, 1, 1] + packet_bits(b'\xd2')[8:]))))


# --- enumeration ----------------------------------------------------------------------------------

def _parse_descriptors(blob: bytes):
    """Split a configuration descriptor set into (type, bytes) records, checking each length."""
    records, n = [], 0
    while n < len(blob):
        length = blob[n]
        assert length >= 2 and n + length <= len(blob), f'descriptor at {n} overruns the set'
        records.append((blob[n + 1], blob[n:n + length]))
        n += length
    return records


def test_enumeration():
    h = Harness()

    async def bench(ctx):
        host = _host(ctx, h)
        await _reset(host)
        device = await host.control_read(0, 0x80, 6, 0x0100, 0, 64)   # GET_DESCRIPTOR(device)
        assert len(device) == 18 and device[0] == 18 and device[1] == 1
        assert int.from_bytes(device[2:4], 'little') == 0x0200           # bcdUSB 2.00
        # One function made of two interfaces (IAD): Miscellaneous / Common / IAD.
        assert tuple(device[4:7]) == (0xEF, 0x02, 0x01)
        assert device[7] == 64                                            # bMaxPacketSize0
        assert int.from_bytes(device[8:10], 'little') == USB_VID == 0x1209
        assert int.from_bytes(device[10:12], 'little') == USB_PID_CRABWATT == 0x5AF1
        assert device[17] == 1                                            # bNumConfigurations

        await host.expect_silence(ADDRESS, 0)                             # not its address yet
        await host.control_write(0, 0x00, 5, ADDRESS, 0)                  # SET_ADDRESS
        await host.idle(100)
        await host.expect_silence(0, 0)                                   # the old address is gone

        head = await host.control_read(ADDRESS, 0x80, 6, 0x0200, 0, 9)
        total = int.from_bytes(head[2:4], 'little')
        config = await host.control_read(ADDRESS, 0x80, 6, 0x0200, 0, total)
        assert len(config) == total > 64                                   # spans two packets
        records = _parse_descriptors(config)
        assert records[0][0] == 2 and records[0][1][4] == 2               # 2 interfaces
        iad = [r for t, r in records if t == 0x0B]
        assert len(iad) == 1 and tuple(iad[0][2:7]) == (0, 2, 0x02, 0x02, 0x01)
        interfaces = [r for t, r in records if t == 4]
        assert [tuple(i[5:8]) for i in interfaces] == [(0x02, 0x02, 0x01), (0x0A, 0x00, 0x00)]
        cs = {r[2] for t, r in records if t == 0x24}                      # CDC functional descriptors
        assert {0x00, 0x06, 0x01} <= cs                                   # header, union, call mgmt
        endpoints = {r[2]: (r[3] & 3, int.from_bytes(r[4:6], 'little')) for t, r in records if t == 5}
        assert endpoints[0x80 | DATA_EP] == (2, 64)                        # bulk IN, 64
        assert endpoints[DATA_EP] == (2, 64)                               # bulk OUT, 64
        assert endpoints[0x83][0] == 3                                     # the CDC notification EP

        product = await host.control_read(ADDRESS, 0x80, 6, 0x0300 | device[15], 0x0409, 255)
        assert product[2:].decode('utf-16-le') == 'crabwatt energy monitor'

        await host.control_write(ADDRESS, 0x00, 9, 1, 0)                  # SET_CONFIGURATION 1
        host.reset_toggles(ADDRESS)
        assert await host.control_read(ADDRESS, 0x80, 8, 0, 0, 1) == b'\x01'   # GET_CONFIGURATION
        # What Linux's cdc-acm and Windows' usbser send when the port opens.
        await host.control_write(ADDRESS, 0x21, 0x20, 0, 0, bytes([0x00, 0xC2, 0x01, 0x00, 0, 0, 8]))
        await host.control_write(ADDRESS, 0x21, 0x22, 0x0003, 0)           # DTR | RTS
        await host.control_write(ADDRESS, 0x21, 0x22, 0x0000, 0)           # ... and on close
        # A vendor request this device does not know is refused with STALL, in the data stage,
        # and the endpoint works again at the next SETUP.
        with pytest.raises(Stall):
            await host.control_read(ADDRESS, 0xC0, 0x42, 0, 0, 4)
        assert await host.control_read(ADDRESS, 0x80, 8, 0, 0, 1) == b'\x01'
        assert host.worst_gap_bits <= LUNA_REPLY_MAX_BITS

    h.run(bench)
