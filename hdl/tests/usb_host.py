"""A USB 2.0 full-speed host that drives and samples a device's raw D+/D- lines in simulation.

The device is LUNA's gateware PHY, so the bus here is its pin record: `d_p`/`d_n` with `.i`
(bus -> device), `.o`/`.oe` (device -> bus), and `pullup.o` (the device's 1.5 kOhm D+ pull-up).
The model runs in the 48 MHz `usb_io` domain: one full-speed bit (12 Mbit/s) is 4 samples.

Every cycle the bus is resolved from who drives it: the device (while `oe`), the host, or nobody
(then the pull-up holds J, or SE0 when the device has not connected). Everything the device puts
on the line is checked against chapters 7 and 8 of the USB 2.0 specification; any departure
raises `ProtocolViolation`, so a test fails on it:

  line       J/K only inside a packet, never SE1; transitions on the 12 MHz bit grid (+-1 sample);
             EOP = SE0 for 2 bit times (+-1 sample) followed by J; never talks over the host,
             never transmits unasked (7.1.7, 7.1.13.2)
  framing    SYNC KJKJKJKK, bit stuffing (a 0 after six 1s, also right before the EOP, 7.1.9),
             whole bytes, PID check nibble (8.3.1), CRC16 on data (8.3.5), payload <= max packet
  timing     a reply starts 2..6.5 bit times after the host's EOP (7.1.18.1); a reply the host
             needs that does not start within 18 bit times is a timeout (7.1.19.1) and fails
  protocol   DATA0/DATA1 sequence per endpoint (8.6), SETUP always ACKed (8.5.3), a short
             packet ends a control data stage, status stages are zero-length DATA1, no reply to
             tokens for other addresses nor to a data packet with a bad CRC16

The host side follows the same rules (it is checked by `test_usb_cdc`'s packet encoding tests):
it keeps SOFs on a 1 ms frame (a transaction that would not finish before the next SOF waits
for it), waits 2..6.5 bit times before its own handshakes, and resets the bus with SE0.
"""

from dataclasses import dataclass

BIT_CYCLES = 4                      # 48 MHz samples per 12 Mbit/s bit
FRAME_CYCLES = 48_000               # 1 ms full-speed frame
IPD_MIN_BITS = 2                    # 7.1.18.1: inter-packet delay, minimum
RESPONSE_MAX_BITS = 6.5             # 7.1.18.1: a device's reply starts within 6.5 bit times
HOST_TIMEOUT_BITS = 18              # 7.1.19.1: host gives up 16..18 bit times after its EOP
HOST_REPLY_BITS = 3                 # our own turnaround before a handshake or data (2..6.5)

# Line states as (D+, D-).
J, K, SE0, SE1 = (1, 0), (0, 1), (0, 0), (1, 1)

# PIDs (8.3.1): the low nibble; the byte on the wire carries its complement in the high nibble.
OUT, IN, SOF, SETUP = 0x1, 0x9, 0x5, 0xD
DATA0, DATA1 = 0x3, 0xB
ACK, NAK, STALL = 0x2, 0xA, 0xE
PID_NAMES = {OUT: 'OUT', IN: 'IN', SOF: 'SOF', SETUP: 'SETUP', DATA0: 'DATA0', DATA1: 'DATA1',
             ACK: 'ACK', NAK: 'NAK', STALL: 'STALL', 0x7: 'DATA2', 0xF: 'MDATA', 0x4: 'PING',
             0xC: 'PRE', 0x8: 'SPLIT', 0x6: 'NYET'}


class ProtocolViolation(AssertionError):
    """The device broke the USB 2.0 specification."""


class Stall(Exception):
    """The device answered STALL: legal, but the request or endpoint is refused."""


# --- packet arithmetic -----------------------------------------------------------------------------

def crc5(value: int, nbits: int = 11) -> int:
    """CRC5 of a token's address+endpoint (or SOF frame number) field, as sent (8.3.5.1):
    G(x) = x^5 + x^2 + 1, register preset to ones, bits fed LSB first, remainder inverted."""
    reg = 0b11111
    for i in range(nbits):
        bit = (value >> i) & 1
        feedback = bit ^ (reg >> 4)
        reg = (reg << 1) & 0b11111
        if feedback:
            reg ^= 0b00101
    # The remainder goes out MSB first; reflect it so it can be sent LSB first with the field.
    out = reg ^ 0b11111
    return int(f'{out:05b}'[::-1], 2)


def crc16(data: bytes) -> int:
    """CRC16 of a data payload (8.3.5.2): G(x) = x^16 + x^15 + x^2 + 1, preset to ones, LSB first,
    inverted; sent low byte first."""
    reg = 0xFFFF
    for byte in data:
        reg ^= byte
        for _ in range(8):
            reg = (reg >> 1) ^ 0xA001 if reg & 1 else reg >> 1
    return reg ^ 0xFFFF


def pid_byte(pid: int) -> int:
    return pid | ((pid ^ 0xF) << 4)


def token_packet(pid: int, address: int, endpoint: int) -> bytes:
    if not (0 <= address < 128 and 0 <= endpoint < 16):
        raise ValueError(f'address {address} / endpoint {endpoint} out of range')
    field = address | (endpoint << 7)
    field |= crc5(field) << 11
    return bytes([pid_byte(pid), field & 0xFF, field >> 8])


def sof_packet(frame_number: int) -> bytes:
    field = frame_number & 0x7FF
    field |= crc5(field) << 11
    return bytes([pid_byte(SOF), field & 0xFF, field >> 8])


def data_packet(pid: int, payload: bytes) -> bytes:
    crc = crc16(payload)
    return bytes([pid_byte(pid)]) + bytes(payload) + bytes([crc & 0xFF, crc >> 8])


def handshake_packet(pid: int) -> bytes:
    return bytes([pid_byte(pid)])


def packet_bits(packet: bytes) -> list:
    """SYNC then the bytes, LSB first (8.1), before bit stuffing."""
    bits = [0, 0, 0, 0, 0, 0, 0, 1]
    for byte in packet:
        bits += [(byte >> i) & 1 for i in range(8)]
    return bits


def stuff(bits: list) -> list:
    """A 0 after every six consecutive 1s, the SYNC's final 1 included (7.1.9)."""
    out, ones = [], 0
    for bit in bits:
        out.append(bit)
        ones = ones + 1 if bit else 0
        if ones == 6:
            out.append(0)
            ones = 0
    return out


def nrzi(bits: list) -> list:
    """Line states from idle J: a 0 toggles the line, a 1 keeps it; then EOP (SE0, SE0, J)."""
    level, symbols = J, []
    for bit in bits:
        if bit == 0:
            level = K if level == J else J
        symbols.append(level)
    return symbols + [SE0, SE0, J]


def line_symbols(packet: bytes) -> list:
    """The line states of one packet, one per bit time."""
    return nrzi(stuff(packet_bits(packet)))


def decode_runs(runs: list) -> bytes:
    """Decode a received packet, given as (state, length in samples) runs from the first K to the
    last state before the EOP. Raises ProtocolViolation on any framing error."""
    bits, level = [], J
    for state, length in runs:
        if state not in (J, K):
            raise ProtocolViolation(f'line state {state} inside a packet (only J/K before the EOP)')
        cells = round(length / BIT_CYCLES)
        if cells < 1 or abs(length - cells * BIT_CYCLES) > 1:
            raise ProtocolViolation(f'a {length}-sample run is off the 12 MHz bit grid (jitter)')
        if state == level:
            raise ProtocolViolation('run without a transition')     # cannot happen: runs alternate
        bits += [0] + [1] * (cells - 1)              # NRZI: a transition is 0, none is 1
        level = state
    data, ones, i = [], 0, 0
    while i < len(bits):
        bit = bits[i]
        data.append(bit)
        ones = ones + 1 if bit else 0
        i += 1
        if ones == 6:
            if i == len(bits):
                raise ProtocolViolation('six 1s right before the EOP without the stuffed 0 (7.1.9)')
            if bits[i] != 0:
                raise ProtocolViolation('bit stuffing error: seven 1s in a row')
            i += 1
            ones = 0
    if data[:8] != [0, 0, 0, 0, 0, 0, 0, 1]:
        raise ProtocolViolation(f'bad SYNC {data[:8]}')
    body = data[8:]
    if len(body) % 8 or not body:
        raise ProtocolViolation(f'packet of {len(body)} bits is not whole bytes')
    out = bytearray()
    for n in range(0, len(body), 8):
        out.append(sum(b << k for k, b in enumerate(body[n:n + 8])))
    pid = out[0]
    if (pid & 0xF) ^ (pid >> 4) != 0xF:
        raise ProtocolViolation(f'PID 0x{pid:02x} fails its check nibble')
    return bytes(out)


@dataclass
class Packet:
    pid: int
    payload: bytes
    gap_bits: float         # inter-packet delay before it, in bit times

    @property
    def name(self):
        return PID_NAMES.get(self.pid, f'PID{self.pid:x}')


# --- the host ---------------------------------------------------------------------------------------

class FullSpeedHost:
    """Drives a LUNA-style pin record from an Amaranth async testbench in the `usb_io` domain.

    `frame_cycles` is the SOF period (1 ms; LUNA itself does not time frames, so a test may
    stretch it to keep SOFs out of the way, and `sof_enabled = False` stops them: bus idle).
    """

    def __init__(self, ctx, bus, *, domain: str = 'usb_io', frame_cycles: int = FRAME_CYCLES,
                 max_packet: int = 64, nak_limit: int = 500,
                 response_max_bits: float = RESPONSE_MAX_BITS):
        self.ctx, self.bus, self.domain = ctx, bus, domain
        if not IPD_MIN_BITS <= response_max_bits < HOST_TIMEOUT_BITS:
            raise ValueError(f'response limit {response_max_bits} outside the host timeout')
        self.response_max_bits = response_max_bits
        self.worst_gap_bits = 0.0           # slowest reply seen, for reports
        self.reply_gaps = {}                # reply PID name -> set of delays seen, in bit times
        self.frame_cycles, self.max_packet, self.nak_limit = frame_cycles, max_packet, nak_limit
        self.now = 0                     # samples since the model started
        self.next_sof = None             # sample at which the next SOF is due (None: none yet)
        self.sof_enabled = True
        self.frame_number = 0
        self.sofs_sent = 0
        self.last_sof_end = None         # sample at which the last SOF's EOP ended
        self._eop_end = None             # sample at which our last packet's EOP went SE0 -> J
        self._receiving = False
        self._toggles = {}               # (address, endpoint, 'in'|'out') -> next DATA PID
        self.log = []                    # (sample, direction, text): for failure messages

    # -- one sample -------------------------------------------------------------------------------
    async def _cycle(self, drive=None):
        """One usb_io cycle: resolve the bus, present it to the device, advance. Returns the state
        on the line during this cycle and whether the device drove it."""
        ctx, bus = self.ctx, self.bus
        dev_oe = ctx.get(bus.d_p.oe)
        if dev_oe != ctx.get(bus.d_n.oe):
            raise ProtocolViolation('device enables D+ and D- drivers separately')
        if dev_oe:
            if drive is not None:
                raise ProtocolViolation(f'device drove the bus while the host was transmitting '
                                        f'(sample {self.now})')
            if not self._receiving:
                raise ProtocolViolation(f'device transmitted without being asked (sample {self.now})')
            line = (ctx.get(bus.d_p.o), ctx.get(bus.d_n.o))
            if line == SE1:
                raise ProtocolViolation('device drove SE1')
        elif drive is not None:
            line = drive
        else:
            line = J if ctx.get(bus.pullup.o) else SE0
        ctx.set(bus.d_p.i, line[0])
        ctx.set(bus.d_n.i, line[1])
        await ctx.tick(self.domain)
        self.now += 1
        return line, dev_oe

    async def idle(self, cycles: int):
        """Let the bus idle (SOFs still go out when due)."""
        end = self.now + cycles
        while self.now < end:
            if self._sof_due():
                await self._send_sof()
            else:
                await self._cycle()

    def _sof_due(self):
        return self.sof_enabled and self.next_sof is not None and self.now >= self.next_sof

    async def _send_sof(self):
        self.frame_number = (self.frame_number + 1) & 0x7FF
        self.next_sof += self.frame_cycles
        self.sofs_sent += 1
        await self._send(sof_packet(self.frame_number))
        self.last_sof_end = self.now

    async def _frame_guard(self, payload_len: int):
        """Before a transaction: send a due SOF; if the transaction (token, worst-case stuffed data,
        handshake, turnarounds) might not end before the next SOF, wait for it (the host must not
        let a transaction cross into the next frame's SOF)."""
        if self._sof_due():
            await self._send_sof()
        if not (self.sof_enabled and self.next_sof is not None):
            return
        budget_bits = 3 * 35 + (payload_len + 3) * 8 * 7 // 6 + 3 * HOST_TIMEOUT_BITS
        if self.now + budget_bits * BIT_CYCLES >= self.next_sof:
            await self.idle(self.next_sof - self.now)
            await self._send_sof()

    # -- line level -------------------------------------------------------------------------------
    async def _send(self, packet: bytes):
        """Transmit one packet, at least the minimum inter-packet delay after the last one."""
        if self._eop_end is not None:
            while self.now - self._eop_end < IPD_MIN_BITS * BIT_CYCLES:     # 7.1.18.1
                await self._cycle()
        for state in line_symbols(packet):
            for _ in range(BIT_CYCLES):
                await self._cycle(state)
        self._eop_end = self.now - BIT_CYCLES          # the J bit of the EOP started here
        self.log.append((self.now, 'host', packet.hex()))

    async def bus_reset(self, se0_cycles: int):
        """Drive SE0 for `se0_cycles`, then idle. The caller picks the length (see test_usb_cdc)."""
        for _ in range(se0_cycles):
            await self._cycle(SE0)
        self._eop_end = None
        self._toggles.clear()
        await self._cycle(J)                           # the host ends reset by driving J briefly
        self.next_sof = self.now + 12 * BIT_CYCLES    # first SOF right after reset recovery starts

    async def wait_connect(self, timeout_cycles: int):
        """Wait for the device's D+ pull-up (attach, 7.1.7.3)."""
        for _ in range(timeout_cycles):
            if self.ctx.get(self.bus.pullup.o):
                return
            await self._cycle()
        raise ProtocolViolation('device never connected its D+ pull-up')

    async def _receive(self, *, required: bool):
        """Wait for a packet from the device, starting after our last EOP. Returns a Packet, or None
        when nothing starts within the host's timeout (an error when `required`)."""
        self._receiving = True
        try:
            while True:
                line, _ = await self._cycle()
                if line != J:
                    break
                if self.now - self._eop_end > HOST_TIMEOUT_BITS * BIT_CYCLES:
                    if required:
                        raise ProtocolViolation(f'no reply within {HOST_TIMEOUT_BITS} bit times '
                                                f'(turnaround timeout, 7.1.19.1) to {self.log[-1][2]}')
                    return None
            start = self.now - 1
            gap = (start - self._eop_end) / BIT_CYCLES       # from our EOP's SE0->J edge
            if line != K:
                raise ProtocolViolation(f'packet starts with {line}, not K (SOP is J->K)')
            if gap < IPD_MIN_BITS:
                raise ProtocolViolation(f'reply after only {gap} bit times (minimum {IPD_MIN_BITS})')
            if gap > self.response_max_bits:
                raise ProtocolViolation(f'reply after {gap} bit times (maximum {self.response_max_bits};'
                                        f' the spec\'s is {RESPONSE_MAX_BITS}, 7.1.18.1) to '
                                        f'{self.log[-1][2]}')
            self.worst_gap_bits = max(self.worst_gap_bits, gap)
            runs, state, length, total = [], line, 1, 1
            max_samples = ((self.max_packet + 4) * 8 * 7 // 6 + 16) * BIT_CYCLES
            while True:
                line, _ = await self._cycle()
                total += 1
                if total > max_samples:
                    raise ProtocolViolation('babble: packet longer than the largest allowed')
                if line == state:
                    length += 1
                    continue
                runs.append((state, length))
                if line == SE0:
                    break
                state, length = line, 1
            se0 = 1
            while True:
                line, oe = await self._cycle()
                if line != SE0:
                    break
                se0 += 1
            if abs(se0 - 2 * BIT_CYCLES) > 1:
                raise ProtocolViolation(f'EOP SE0 lasted {se0} samples (2 bit times = {2 * BIT_CYCLES})')
            if line != J:
                raise ProtocolViolation(f'EOP ended in {line}, not J')
            if not oe:
                raise ProtocolViolation('device released the bus without driving J after SE0 (7.1.13.2)')
            self._eop_end = self.now - 1
            # Let the device finish its J bit and release before anything else happens.
            while True:
                line, oe = await self._cycle()
                if not oe:
                    break
                if line != J:
                    raise ProtocolViolation(f'{line} after the EOP')
                if self.now - self._eop_end > 2 * BIT_CYCLES:
                    raise ProtocolViolation('device kept driving the bus after its EOP')
            raw = decode_runs(runs)
            pkt = Packet(pid=raw[0] & 0xF, payload=raw[1:], gap_bits=gap)
            self.reply_gaps.setdefault(pkt.name, set()).add(gap)
            self.log.append((start, 'device', raw.hex()))
            return pkt
        finally:
            self._receiving = False

    async def _turnaround(self):
        """Our own reply delay after the device's EOP."""
        while self.now - self._eop_end < HOST_REPLY_BITS * BIT_CYCLES:
            await self._cycle()

    async def expect_silence(self, address: int, endpoint: int):
        """IN to an address/endpoint that must not answer (e.g. another device's address)."""
        await self._frame_guard(0)
        await self._send(token_packet(IN, address, endpoint))
        pkt = await self._receive(required=False)
        if pkt is not None:
            raise ProtocolViolation(f'device answered {pkt.name} to a token for address {address}')

    # -- transactions (8.5) -----------------------------------------------------------------------
    def _data_packet_check(self, pkt: Packet):
        if pkt.pid not in (DATA0, DATA1):
            return
        if len(pkt.payload) < 2:
            raise ProtocolViolation('data packet shorter than its CRC16')
        body, crc = pkt.payload[:-2], pkt.payload[-2] | (pkt.payload[-1] << 8)
        if crc16(body) != crc:
            raise ProtocolViolation(f'CRC16 0x{crc:04x} wrong for {body.hex()} '
                                    f'(expected 0x{crc16(body):04x})')
        if len(body) > self.max_packet:
            raise ProtocolViolation(f'{len(body)}-byte packet exceeds wMaxPacketSize {self.max_packet}')

    async def setup(self, address: int, request: bytes):
        """SETUP stage: the device must ACK (it may not NAK or STALL a SETUP, 8.5.3)."""
        if len(request) != 8:
            raise ValueError('a SETUP packet is 8 bytes')
        await self._frame_guard(8)
        await self._send(token_packet(SETUP, address, 0))
        await self._send(data_packet(DATA0, request))
        pkt = await self._receive(required=True)
        if pkt.pid != ACK or pkt.payload:
            raise ProtocolViolation(f'SETUP answered with {pkt.name} {pkt.payload.hex()}, not ACK')
        self._toggles[(address, 0, 'in')] = DATA1
        self._toggles[(address, 0, 'out')] = DATA1

    def reset_toggles(self, address: int):
        """SET_CONFIGURATION puts every data endpoint of the device back to DATA0 (9.1.1.5)."""
        for key in [k for k in self._toggles if k[0] == address and k[1] != 0]:
            del self._toggles[key]

    async def in_transaction(self, address: int, endpoint: int):
        """One IN: returns the payload (ACKed), or None on NAK. Raises Stall on STALL."""
        await self._frame_guard(self.max_packet)
        await self._send(token_packet(IN, address, endpoint))
        pkt = await self._receive(required=True)
        if pkt.pid == NAK and not pkt.payload:
            return None
        if pkt.pid == STALL and not pkt.payload:
            raise Stall(f'IN {address}.{endpoint}')
        if pkt.pid not in (DATA0, DATA1):
            raise ProtocolViolation(f'IN answered with {pkt.name}')
        self._data_packet_check(pkt)
        key = (address, endpoint, 'in')
        want = self._toggles.get(key, DATA0)
        if pkt.pid != want:
            # Our host never loses an ACK, so a repeated toggle is the device's error (8.6.4).
            raise ProtocolViolation(f'IN {address}.{endpoint}: {pkt.name}, expected {PID_NAMES[want]}')
        await self._turnaround()
        await self._send(handshake_packet(ACK))
        self._toggles[key] = DATA1 if want == DATA0 else DATA0
        return pkt.payload[:-2]

    async def out_transaction(self, address: int, endpoint: int, payload: bytes):
        """One OUT: True when ACKed (toggle advances), False on NAK. Raises Stall on STALL."""
        if len(payload) > self.max_packet:
            raise ValueError('payload exceeds the max packet size')
        await self._frame_guard(len(payload))
        key = (address, endpoint, 'out')
        pid = self._toggles.get(key, DATA0)
        await self._send(token_packet(OUT, address, endpoint))
        await self._send(data_packet(pid, payload))
        pkt = await self._receive(required=True)
        if pkt.payload:
            raise ProtocolViolation(f'handshake {pkt.name} carries bytes {pkt.payload.hex()}')
        if pkt.pid == ACK:
            self._toggles[key] = DATA1 if pid == DATA0 else DATA0
            return True
        if pkt.pid == NAK:
            return False
        if pkt.pid == STALL:
            raise Stall(f'OUT {address}.{endpoint}')
        raise ProtocolViolation(f'OUT answered with {pkt.name}')

    async def out_corrupted(self, address: int, endpoint: int, payload: bytes):
        """An OUT whose data packet arrives with a wrong CRC16, as line noise would leave it. The
        device must ignore the packet and stay silent, so the host times out and would send it
        again with the same toggle (8.7); whatever it already received of it must not count."""
        if len(payload) > self.max_packet:
            raise ValueError('payload exceeds the max packet size')
        await self._frame_guard(len(payload))
        pid = self._toggles.get((address, endpoint, 'out'), DATA0)
        packet = bytearray(data_packet(pid, payload))
        packet[-1] ^= 0x01
        await self._send(token_packet(OUT, address, endpoint))
        await self._send(bytes(packet))
        pkt = await self._receive(required=False)
        if pkt is not None:
            raise ProtocolViolation(f'device answered {pkt.name} to a data packet with a bad CRC16')

    async def _retry(self, transaction, *args):
        for _ in range(self.nak_limit):
            result = await transaction(*args)
            if result is not None and result is not False:
                return result
            await self.idle(8 * BIT_CYCLES)
        raise ProtocolViolation(f'{transaction.__name__}{args} NAKed {self.nak_limit} times')

    # -- control transfers (8.5.3, 9.3) -----------------------------------------------------------
    async def control_read(self, address: int, request_type: int, request: int, value: int,
                           index: int, length: int) -> bytes:
        await self.setup(address, _setup_bytes(request_type, request, value, index, length))
        data = bytearray()
        while len(data) < length:
            chunk = await self._retry(self.in_transaction, address, 0)
            data += chunk
            if len(data) > length:
                raise ProtocolViolation(f'data stage sent {len(data)} bytes for wLength {length}')
            if len(chunk) < self.max_packet:
                break                                  # short packet ends the data stage
        await self._retry(self.out_transaction, address, 0, b'')
        return bytes(data)

    async def control_write(self, address: int, request_type: int, request: int, value: int,
                            index: int, data: bytes = b''):
        await self.setup(address, _setup_bytes(request_type, request, value, index, len(data)))
        for n in range(0, len(data), self.max_packet):
            await self._retry(self.out_transaction, address, 0, data[n:n + self.max_packet])
        await self.status_in(address)

    async def status_in(self, address: int):
        """The status stage of a control write: a zero-length DATA1 IN (8.5.3), whatever toggle
        the data stage left."""
        self._toggles[(address, 0, 'in')] = DATA1
        status = await self._retry(self.in_transaction, address, 0)
        if status:
            raise ProtocolViolation(f'status stage carried {status.hex()}, must be zero-length')


def _setup_bytes(request_type, request, value, index, length):
    return bytes([request_type, request, value & 0xFF, value >> 8, index & 0xFF, index >> 8,
                  length & 0xFF, length >> 8])
