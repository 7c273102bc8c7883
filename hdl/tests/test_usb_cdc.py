"""The SoC's USB CDC-ACM block (crabwatt.soc.usb_serial: LUNA's USBSerialDevice with our descriptors,
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
    after 10..11.25 bit times with a handshake and up to 14 with data (measured here), which a
    host accepts when directly attached (it waits 16..18 bit times) but which leaves only ~2 bit
    times for hubs (each adds ~1.7 bit times of round trip). The model enforces
    LUNA_REPLY_MAX_BITS = 14, so any slower reply still fails, and
    `test_reply_delay_exceeds_spec` records the departure.
"""

import json
import pathlib
import random

import pytest
from amaranth import Module, Signal
from amaranth.lib import stream
from amaranth.sim import Simulator

from crabwatt.soc.usb_serial import USB_CLK_HZ, USB_PID_CRABWATT, USB_VID, _usb_serial, _wire_usb_serial
from usb_host import (ACK, BIT_CYCLES, DATA0, DATA1, FRAME_CYCLES, IN, J, K, NAK, RESPONSE_MAX_BITS,
                      SE0, SETUP, FullSpeedHost, ProtocolViolation, Stall, crc5, crc16, data_packet,
                      decode_runs, handshake_packet, line_symbols, nrzi, packet_bits, stuff, sof_packet, token_packet)

VECTORS = pathlib.Path(__file__).resolve().parents[2] / 'test' / 'vectors' / 'frames' / 'frames.json'

LUNA_REPLY_MAX_BITS = 14.0
RESET_SE0_CYCLES = 50 * 48          # 50 us
ADDRESS = 5
DATA_EP = 4                         # LUNA's USBSerialDevice: bulk IN 0x84 / OUT 0x04
USB_IO_PERIOD_FS = 20_833_332       # even, so both clocks keep exact 4:1 edges
# CDC line coding: dwDTERate (LE), bCharFormat, bParityType, bDataBits. The device's own until set.
LINE_CODING_DEFAULT = bytes([0x00, 0xC2, 0x01, 0x00, 0, 0, 8])          # 115200 8N1


# --- fixture --------------------------------------------------------------------------------------

class _Pin:
    def __init__(self, name):
        self.i, self.o, self.oe = Signal(name=f'{name}_i'), Signal(name=f'{name}_o'), Signal(name=f'{name}_oe')


class UsbPins:
    """The shape `platform.request('usb', 0)` has on the OrangeCrab: D+, D-, pull-up enable."""

    def __init__(self):
        self.d_p, self.d_n, self.pullup = _Pin('d_p'), _Pin('d_n'), _Pin('pullup')


SERIAL_NUMBER = 0xE4632C5A1B0F3907     # as the firmware writes USB.SERIAL from the flash's unique ID


class Harness:
    def __init__(self, *, serial_set=True):
        self.bus = UsbPins()
        self.serial = _usb_serial(self.bus)
        # The SoC side of the byte channel, as SocTop wires soc.usb_tx / soc.usb_rx.
        self.tx = stream.Signature(8).flip().create()
        self.rx = stream.Signature(8).create()
        self.m = Module()
        self.m.submodules.serial = self.serial
        _wire_usb_serial(self.m, self.serial, tx=self.tx, rx=self.rx)
        self.m.d.comb += self.serial.serial_number.eq(SERIAL_NUMBER)
        if serial_set:
            self.m.d.comb += self.serial.serial_valid.eq(1)

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
    """The shortest encoded frame of that name with at least `min_len` bytes."""
    cases = json.loads(VECTORS.read_text())['cases']
    frames = [bytes.fromhex(c['hex']) for c in cases if c['name'] == name]
    frames = sorted(f for f in frames if len(f) >= min_len)
    if not frames:
        raise LookupError(f'no {name} vector of {min_len}+ bytes')
    return frames[0]


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
        assert device[16] not in (0, device[14], device[15])                # iSerialNumber of its own
        serial = await host.control_read(ADDRESS, 0x80, 6, 0x0300 | device[16], 0x0409, 255)
        assert serial[:2] == bytes([34, 3]) and serial[2:].decode('utf-16-le') == f'{SERIAL_NUMBER:016X}'
        # A short read (Windows asks for the first 2 bytes, then the rest) gets the first bytes.
        assert await host.control_read(ADDRESS, 0x80, 6, 0x0300 | device[16], 0x0409, 2) == bytes([34, 3])

        await host.control_write(ADDRESS, 0x00, 9, 1, 0)                  # SET_CONFIGURATION 1
        host.reset_toggles(ADDRESS)
        assert await host.control_read(ADDRESS, 0x80, 8, 0, 0, 1) == b'\x01'   # GET_CONFIGURATION
        # What Linux's cdc-acm and Windows' usbser send when the port opens (usbser reads the line
        # coding first, and again after setting it).
        assert await host.control_read(ADDRESS, 0xA1, 0x21, 0, 0, 7) == LINE_CODING_DEFAULT
        await host.control_write(ADDRESS, 0x21, 0x20, 0, 0, LINE_CODING_DEFAULT)
        assert await host.control_read(ADDRESS, 0xA1, 0x21, 0, 0, 7) == LINE_CODING_DEFAULT
        await host.control_write(ADDRESS, 0x21, 0x22, 0x0003, 0)           # DTR | RTS
        await host.control_write(ADDRESS, 0x21, 0x22, 0x0000, 0)           # ... and on close
        # A vendor request this device does not know is refused with STALL, in the data stage,
        # and the endpoint works again at the next SETUP.
        with pytest.raises(Stall):
            await host.control_read(ADDRESS, 0xC0, 0x42, 0, 0, 4)
        assert await host.control_read(ADDRESS, 0x80, 8, 0, 0, 1) == b'\x01'
        assert host.worst_gap_bits <= LUNA_REPLY_MAX_BITS

    h.run(bench)


def test_attaches_only_once_the_serial_number_is_set():
    h = Harness(serial_set=False)

    async def bench(ctx):
        await ctx.tick('usb').repeat(2000)
        assert not ctx.get(h.bus.pullup.o), 'attached before the firmware set the serial number'
        ctx.set(h.serial.serial_valid, 1)
        host = _host(ctx, h)
        await _reset(host)
        device = await host.control_read(0, 0x80, 6, 0x0100, 0, 18)
        serial = await host.control_read(0, 0x80, 6, 0x0300 | device[16], 0x0409, 255)
        assert serial[2:].decode('utf-16-le') == f'{SERIAL_NUMBER:016X}'

    h.run(bench)


def _line_coding(rate_baud: int, stop_bits_code: int, parity_code: int, data_bits: int) -> bytes:
    return rate_baud.to_bytes(4, 'little') + bytes([stop_bits_code, parity_code, data_bits])


def test_line_coding_reads_back_what_was_set():
    """GET_LINE_CODING (0xA1 0x21) answers the last SET_LINE_CODING's 7 bytes, the default before
    any and after a bus reset; a SET whose data never arrived whole (wrong length, bad CRC16,
    abandoned for a new SETUP) changes nothing."""
    h = Harness()

    async def get(host, length=7):
        return await host.control_read(ADDRESS, 0xA1, 0x21, 0, 0, length)

    async def set_(host, coding):
        await host.control_write(ADDRESS, 0x21, 0x20, 0, 0, coding)

    async def bench(ctx):
        host = _host(ctx, h)
        await _configure(host)
        assert await get(host) == LINE_CODING_DEFAULT
        # wLength past 7: 7 bytes, a short packet that ends the data stage (260: not cut to its
        # low bits, which would be 4).
        assert await get(host, 64) == LINE_CODING_DEFAULT
        assert await get(host, 260) == LINE_CODING_DEFAULT

        odd = _line_coding(9600, 2, 2, 7)                        # 9600 baud, 2 stop bits, even, 7 bits
        await set_(host, odd)
        assert await get(host) == odd
        # Short reads get the first wLength bytes.
        assert await get(host, 4) == odd[:4]
        assert await get(host, 1) == odd[:1]
        # wLength 0 has no data stage to answer in: a request error, refused in the status stage.
        with pytest.raises(Stall):
            await host.control_write(ADDRESS, 0xA1, 0x21, 0, 0)
        assert await get(host) == odd

        # A SET whose data stage is not 7 bytes is acknowledged (LUNA's handler) but not kept.
        await set_(host, _line_coding(300, 0, 0, 8)[:5])
        await set_(host, _line_coding(300, 0, 0, 8) + b'\x00')
        assert await get(host) == odd
        # Its data packet damaged on the line, then the host gives up the transfer for a new SETUP.
        await host.setup(ADDRESS, bytes([0x21, 0x20, 0, 0, 0, 0, 7, 0]))
        await host.out_corrupted(ADDRESS, 0, _line_coding(57600, 0, 1, 8))
        assert await get(host) == odd
        # The same damaged packet sent again intact (same toggle) completes the transfer.
        wanted = _line_coding(3_000_000, 0, 0, 8)
        await host.setup(ADDRESS, bytes([0x21, 0x20, 0, 0, 0, 0, 7, 0]))
        await host.out_corrupted(ADDRESS, 0, wanted)
        assert await host.out_transaction(ADDRESS, 0, wanted)
        await host.status_in(ADDRESS)
        assert await get(host) == wanted

        # A bus reset makes a new device: the default again.
        await _configure(host)
        assert await get(host) == LINE_CODING_DEFAULT

    h.run(bench)


# --- data -----------------------------------------------------------------------------------------

def _expected_packets(frames):
    """Each frame is one transfer: 64-byte packets, ended by a short packet or, when the frame is
    a multiple of 64 bytes, a zero-length packet."""
    packets = []
    for frame in frames:
        packets += [frame[n:n + 64] for n in range(0, len(frame), 64)]
        if len(frame) % 64 == 0:
            packets.append(b'')
    return packets


async def _produce(ctx, h, data, rng, start, idle=0.0):
    """The SoC side: offer `data` on `tx` in the usb domain, pausing a random `idle` fraction."""
    while not start():
        await ctx.tick('usb')
    for byte in data:
        while rng.random() < idle:
            ctx.set(h.tx.valid, 0)
            await ctx.tick('usb')
        ctx.set(h.tx.payload, byte)
        ctx.set(h.tx.valid, 1)
        await ctx.tick('usb').until(h.tx.ready)
    ctx.set(h.tx.valid, 0)


async def _wait_for(host, condition, limit_cycles=100_000):
    """Idle the bus until `condition()` holds; fail (not hang) if it never does."""
    end = host.now + limit_cycles
    while not condition():
        assert host.now < end, 'timed out waiting for the SoC side'
        await host.idle(64)


async def _collect_in(host, count):
    """Poll the bulk IN endpoint until `count` packets (ZLPs included) have arrived."""
    packets, naks = [], 0
    while len(packets) < count:
        payload = await host.in_transaction(ADDRESS, DATA_EP)
        if payload is None:
            naks += 1
            if naks > 2_000:
                raise AssertionError(f'only {len(packets)} of {count} packets arrived')
            await host.idle(8 * BIT_CYCLES)
        else:
            packets.append(payload)
    return packets


@pytest.mark.parametrize('idle', [0.0, 0.7], ids=['back-to-back', 'trickle'])
def test_bulk_in_frames_end_transfers(idle):
    # The firmware's boot delimiter, real COBS frames from the shared vectors (one spanning six
    # packets), and a 128-byte frame that needs a ZLP to end.
    frames = [b'\x00', _vector('status'), _vector('capture_chunk', 200), _cobs(bytes(range(1, 127))),
              _vector('window')]
    assert len(frames[2]) > 200 and len(frames[3]) == 128
    if idle:
        frames = frames[:2] + frames[3:]        # the slow producer needs no big frame to show gaps
    expected = _expected_packets(frames)
    h = Harness()
    state = {'configured': False, 'packets': None}
    rng = random.Random(f'bulk in {idle}')

    async def host_bench(ctx):
        host = _host(ctx, h)
        await _configure(host)
        state['configured'] = True
        state['packets'] = await _collect_in(host, len(expected))
        # Nothing more: the endpoint NAKs once the stream is empty.
        assert await host.in_transaction(ADDRESS, DATA_EP) is None

    async def soc_bench(ctx):
        await _produce(ctx, h, b''.join(frames), rng, lambda: state['configured'], idle)

    h.run(host_bench, soc_bench)
    assert state['packets'] == expected


def test_bulk_out_back_pressure():
    rng = random.Random('bulk out')
    data = bytes(rng.choice([0, rng.randrange(256)]) for _ in range(300))
    h = Harness()
    state = {'naks': 0, 'received': bytearray(), 'done': False}

    async def host_bench(ctx):
        host = _host(ctx, h)
        await _configure(host)
        for n in range(0, len(data), 64):
            while not await host.out_transaction(ADDRESS, DATA_EP, data[n:n + 64]):
                state['naks'] += 1
                assert state['naks'] < 500, 'the device never took the data'
                await host.idle(8 * BIT_CYCLES)
        await _wait_for(host, lambda: len(state['received']) >= len(data))
        await host.idle(400)                    # anything extra (a duplicate) would show up now
        state['done'] = True

    async def soc_bench(ctx):
        # The SoC is not reading until the host has been refused twice; then it reads slowly.
        ctx.set(h.rx.ready, 0)
        while state['naks'] < 2:
            await ctx.tick('usb')
        while not state['done']:
            ready = rng.random() < 0.3
            ctx.set(h.rx.ready, ready)
            _, _, valid, payload = await ctx.tick('usb').sample(h.rx.valid, h.rx.payload)
            if ready and valid:
                state['received'].append(payload)

    h.run(host_bench, soc_bench)
    assert state['naks'] >= 2
    assert bytes(state['received']) == data


def test_reconfiguration_restarts_data_toggles():
    """After a bus reset, and after a SET_CONFIGURATION, a host starts both bulk pipes at DATA0
    (9.1.1.5): the device must too, or it takes the host's first OUT for a repeat and drops it,
    and sends its first IN with the toggle the host has already seen."""
    h = Harness()
    state = {'phase': 0, 'received': bytearray()}

    async def host_bench(ctx):
        host = _host(ctx, h)
        await _configure(host)
        assert await host.out_transaction(ADDRESS, DATA_EP, b'first')            # DATA0
        state['phase'] = 1
        assert await _collect_in(host, 1) == [b'\x00']                          # DATA0
        await _configure(host)                                                   # re-enumerated
        assert await host.out_transaction(ADDRESS, DATA_EP, b'second')           # DATA0 again
        state['phase'] = 2
        assert await _collect_in(host, 1) == [b'ok\x00']                        # DATA0 again
        # SET_CONFIGURATION alone (no bus reset), as libusb's set_configuration does.
        await host.control_write(ADDRESS, 0x00, 9, 1, 0)
        host.reset_toggles(ADDRESS)
        assert await host.out_transaction(ADDRESS, DATA_EP, b'third')            # DATA0 again
        state['phase'] = 3
        assert await _collect_in(host, 1) == [b'!\x00']                         # DATA0 again
        await host.idle(200)

    async def soc_tx(ctx):
        rng = random.Random('toggles')
        await _produce(ctx, h, b'\x00', rng, lambda: state['phase'] == 1)
        await _produce(ctx, h, b'ok\x00', rng, lambda: state['phase'] == 2)
        await _produce(ctx, h, b'!\x00', rng, lambda: state['phase'] == 3)

    async def soc_rx(ctx):
        ctx.set(h.rx.ready, 1)
        while True:
            _, _, valid, payload = await ctx.tick('usb').sample(h.rx.valid, h.rx.payload)
            if valid:
                state['received'].append(payload)

    h.run(host_bench, soc_tx, background=[soc_rx])
    assert bytes(state['received']) == b'firstsecondthird'


# --- bus state ------------------------------------------------------------------------------------

def test_host_active_follows_sofs():
    """`host_active` (the SoC's USB STATUS.configured bit): high once SOFs arrive, low 3 ms after
    the last one (top.py counts 3 ms of 12 MHz cycles; LUNA's own suspend comes much later)."""
    h = Harness()
    active = h.serial.host_active
    limit_cycles = 3 * USB_CLK_HZ // 1000 * 4              # in 48 MHz samples

    async def bench(ctx):
        host = _host(ctx, h)
        host.sof_enabled = False
        await _reset(host)
        await host.idle(2000)
        assert not ctx.get(active), 'active after a reset without any SOF'
        host.sof_enabled, host.next_sof = True, host.now
        await host.idle(1)
        for _ in range(50):
            if ctx.get(active):
                break
            await host.idle(BIT_CYCLES)
        assert ctx.get(active), 'a SOF did not make the host active'
        # A whole frame with its SOFs: active throughout.
        end = host.now + FRAME_CYCLES + 1000
        while host.now < end:
            assert ctx.get(active)
            await host.idle(BIT_CYCLES)
        assert host.sofs_sent >= 2
        # The host stops sending SOFs (idle bus): active until 3 ms after the last one.
        host.sof_enabled = False
        while ctx.get(active):
            await host.idle(BIT_CYCLES)
            assert host.now - host.last_sof_end < limit_cycles + 400, 'still active long after 3 ms'
        silent = host.now - host.last_sof_end
        assert limit_cycles - 400 <= silent <= limit_cycles + 400, f'inactive after {silent} samples'
        # SOFs again: active again.
        host.sof_enabled, host.next_sof = True, host.now
        await host.idle(200)
        assert ctx.get(active)

    h.run(bench)


def test_short_se0_is_not_a_reset():
    """LUNA (at 12 MHz) takes SE0 as a bus reset after 300 cycles = 25 us: 20 us is not one (the
    device keeps its address), the 50 us this suite uses is."""
    h = Harness()

    async def bench(ctx):
        host = _host(ctx, h)
        await _configure(host)
        await host.bus_reset(20 * 48)
        await host.idle(200)
        assert await host.control_read(ADDRESS, 0x80, 8, 0, 0, 1) == b'\x01'   # still configured
        await host.bus_reset(RESET_SE0_CYCLES)
        await host.idle(200)
        await host.expect_silence(ADDRESS, 0)
        assert await host.control_read(0, 0x80, 8, 0, 0, 1) == b'\x00'          # address 0, unconfigured

    h.run(bench)


def test_reply_delay_exceeds_spec():
    """LUNA's replies come 10..14 bit times after the host's EOP; the spec allows 6.5 (7.1.18.1).
    A spec-strict host model flags the first reply. If this ever passes without a violation, LUNA
    got faster: lower LUNA_REPLY_MAX_BITS to match."""
    h = Harness()

    async def bench(ctx):
        host = FullSpeedHost(ctx, h.bus)            # response_max_bits = RESPONSE_MAX_BITS (6.5)
        await _reset(host)
        with pytest.raises(ProtocolViolation, match=r'reply after 1[0-4]\.\d+ bit times'):
            await host.control_read(0, 0x80, 6, 0x0100, 0, 64)

    h.run(bench)
    assert RESPONSE_MAX_BITS < LUNA_REPLY_MAX_BITS < 16


# --- the checker fails on a misbehaving device ----------------------------------------------------

class _ScriptedDevice:
    """Stands in for the simulator and the pins: after each host packet's EOP it waits `gap` bit
    times and drives the next scripted reply (line symbols), then releases the bus. Pure Python,
    so each broken behaviour costs microseconds."""

    def __init__(self, replies, gap_samples=4 * BIT_CYCLES):
        self.bus = UsbPins()
        self.replies, self.gap = list(replies), gap_samples
        self.values = {id(self.bus.pullup.o): 1}          # Signals are not hashable: key by id
        self.seen_se0, self.countdown, self.driving = False, None, []

    def get(self, signal):
        return self.values.get(id(signal), 0)

    def set(self, signal, value):
        self.values[id(signal)] = value

    async def tick(self, domain):
        line = (self.get(self.bus.d_p.i), self.get(self.bus.d_n.i))
        if self.driving:
            self.driving.pop(0)
        elif line == SE0 and not self.get(self.bus.d_p.oe):
            self.seen_se0 = True
        elif line == J and self.seen_se0:
            self.seen_se0 = False
            if self.replies:
                self.countdown = self.gap
        if self.countdown is not None:
            self.countdown -= 1
            if self.countdown <= 0:
                self.countdown = None
                reply = self.replies.pop(0)
                if reply is not None:
                    self.driving = [s for s in reply for _ in range(BIT_CYCLES)]
        state = self.driving[0] if self.driving else None
        for pin, value in ((self.bus.d_p, state and state[0]), (self.bus.d_n, state and state[1])):
            self.set(pin.oe, int(state is not None))
            self.set(pin.o, int(bool(value)))


def _run_scripted(device, transaction, **host_kwargs):
    import asyncio
    host = FullSpeedHost(device, device.bus, **host_kwargs)
    return asyncio.run(transaction(host))


GOOD_IN_DATA = line_symbols(data_packet(DATA0, b'hi'))


@pytest.mark.parametrize('reply, gap_bits, match', [
    (line_symbols(handshake_packet(ACK)), 4, None),                              # a good device
    (line_symbols(handshake_packet(ACK)), 1, 'only 1.0 bit'),                   # too soon
    (line_symbols(handshake_packet(ACK)), 7, 'after 7.0 bit'),                  # too late for 6.5
    (None, 0, 'no reply'),                                                       # silent
    (line_symbols(bytes([0x22])), 4, 'check nibble'),                           # corrupt PID
    (line_symbols(handshake_packet(ACK))[:-3] + [SE0, SE0, SE0, J], 4, 'EOP SE0'),   # long EOP
    (line_symbols(handshake_packet(ACK))[:-1] + [K], 4, 'not J'),               # EOP ends in K
    (nrzi(packet_bits(bytes([0xD2, 0xFF]))), 4, 'seven 1s'),                    # unstuffed
])
def test_checker_rejects_bad_handshakes(reply, gap_bits, match):
    device = _ScriptedDevice([None, reply], gap_samples=gap_bits * BIT_CYCLES)   # token, then DATA

    async def transaction(host):
        return await host.out_transaction(1, 1, b'x')

    if match is None:
        assert _run_scripted(device, transaction) is True
    else:
        with pytest.raises(ProtocolViolation, match=match):
            _run_scripted(device, transaction)


@pytest.mark.parametrize('reply, match', [
    (GOOD_IN_DATA, None),
    (line_symbols(data_packet(DATA1, b'hi')), 'expected DATA0'),                # wrong toggle
    (line_symbols(data_packet(DATA0, b'hi')[:-1] + b'\x00'), 'CRC16'),          # bad CRC
    (line_symbols(data_packet(DATA0, bytes(65))), 'babble|wMaxPacketSize'),     # too long
])
def test_checker_rejects_bad_data(reply, match):
    device = _ScriptedDevice([reply])

    async def transaction(host):
        return await host.in_transaction(1, 1)

    if match is None:
        assert _run_scripted(device, transaction) == b'hi'
    else:
        with pytest.raises(ProtocolViolation, match=match):
            _run_scripted(device, transaction)


@pytest.mark.parametrize('reply, match', [
    (None, None),                                                                # ignored: right
    (line_symbols(handshake_packet(ACK)), 'bad CRC16'),                         # taken as good
])
def test_checker_rejects_answering_a_corrupted_packet(reply, match):
    device = _ScriptedDevice([None, reply])                                      # token, then DATA

    async def transaction(host):
        return await host.out_corrupted(1, 1, b'x')

    if match is None:
        assert _run_scripted(device, transaction) is None
    else:
        with pytest.raises(ProtocolViolation, match=match):
            _run_scripted(device, transaction)


def test_checker_rejects_talking_over_the_host():
    # The device starts its reply before the host's DATA packet (after the token) is over.
    device = _ScriptedDevice([line_symbols(handshake_packet(ACK)) * 4], gap_samples=1)

    async def transaction(host):
        return await host.out_transaction(1, 1, b'x')

    with pytest.raises(ProtocolViolation, match='while the host|without being asked'):
        _run_scripted(device, transaction)
