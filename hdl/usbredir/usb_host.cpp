// The line-level full-speed host (see usb_host.h): a port of hdl/tests/usb_host.py's FullSpeedHost.
#include "usb_host.h"

#include <cmath>
#include <cstdio>

namespace usbhost {

namespace {

uint8_t pid_byte(uint8_t pid) { return uint8_t(pid | ((pid ^ 0xF) << 4)); }

std::string hex(const std::vector<uint8_t> &bytes) {
    std::string s;
    char b[3];
    for (uint8_t x : bytes) {
        std::snprintf(b, sizeof b, "%02x", x);
        s += b;
    }
    return s;
}

}  // namespace

uint8_t crc5(uint16_t field) {
    // G(x) = x^5 + x^2 + 1, preset to ones, LSB first, inverted, sent MSB of the remainder first.
    unsigned reg = 0x1F;
    for (int i = 0; i < 11; i++) {
        unsigned feedback = ((field >> i) & 1) ^ (reg >> 4);
        reg = (reg << 1) & 0x1F;
        if (feedback) reg ^= 0x05;
    }
    unsigned out = reg ^ 0x1F, reflected = 0;
    for (int i = 0; i < 5; i++) reflected |= ((out >> i) & 1) << (4 - i);
    return uint8_t(reflected);
}

uint16_t crc16(const uint8_t *data, size_t n) {
    unsigned reg = 0xFFFF;
    for (size_t k = 0; k < n; k++) {
        reg ^= data[k];
        for (int i = 0; i < 8; i++) reg = (reg & 1) ? (reg >> 1) ^ 0xA001 : reg >> 1;
    }
    return uint16_t(reg ^ 0xFFFF);
}

std::vector<uint8_t> token_packet(uint8_t pid, int address, int endpoint) {
    unsigned field = unsigned(address) | unsigned(endpoint) << 7;
    field |= unsigned(crc5(uint16_t(field))) << 11;
    return {pid_byte(pid), uint8_t(field), uint8_t(field >> 8)};
}

std::vector<uint8_t> data_packet(uint8_t pid, const std::vector<uint8_t> &payload) {
    std::vector<uint8_t> p;
    p.reserve(payload.size() + 3);
    p.push_back(pid_byte(pid));
    for (uint8_t b : payload) p.push_back(b);
    uint16_t crc = crc16(payload.data(), payload.size());
    p.push_back(uint8_t(crc));
    p.push_back(uint8_t(crc >> 8));
    return p;
}

std::vector<int> line_symbols(const std::vector<uint8_t> &packet) {
    std::vector<int> bits{0, 0, 0, 0, 0, 0, 0, 1};   // SYNC
    for (uint8_t byte : packet)
        for (int i = 0; i < 8; i++) bits.push_back((byte >> i) & 1);
    std::vector<int> symbols;
    int level = J, ones = 0;
    auto emit = [&](int bit) {
        if (bit == 0) level = level == J ? K : J;
        symbols.push_back(level);
    };
    for (int bit : bits) {
        emit(bit);
        ones = bit ? ones + 1 : 0;
        if (ones == 6) {          // 7.1.9: a 0 after six 1s, the SYNC's last 1 included
            emit(0);
            ones = 0;
        }
    }
    symbols.push_back(SE0);
    symbols.push_back(SE0);
    symbols.push_back(J);
    return symbols;
}

std::vector<uint8_t> decode_runs(const std::vector<std::pair<int, int>> &runs) {
    std::vector<int> bits;
    for (auto [state, length] : runs) {
        if (state != J && state != K) throw ProtocolViolation("SE0/SE1 inside a packet (only J/K before the EOP)");
        int cells = int(std::lround(double(length) / kBitCycles));
        if (cells < 1 || std::abs(length - cells * kBitCycles) > 1)
            throw ProtocolViolation("a " + std::to_string(length) + "-sample run is off the 12 MHz bit grid");
        bits.push_back(0);
        for (int i = 1; i < cells; i++) bits.push_back(1);
    }
    std::vector<int> data;
    int ones = 0;
    for (size_t i = 0; i < bits.size();) {
        int bit = bits[i++];
        data.push_back(bit);
        ones = bit ? ones + 1 : 0;
        if (ones == 6) {
            if (i == bits.size()) throw ProtocolViolation("six 1s right before the EOP without the stuffed 0 (7.1.9)");
            if (bits[i] != 0) throw ProtocolViolation("bit stuffing error: seven 1s in a row");
            i++;
            ones = 0;
        }
    }
    static const int sync[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    if (data.size() < 8 || !std::equal(sync, sync + 8, data.begin())) throw ProtocolViolation("bad SYNC");
    size_t body = data.size() - 8;
    if (body == 0 || body % 8) throw ProtocolViolation("packet of " + std::to_string(body) + " bits is not whole bytes");
    std::vector<uint8_t> out;
    for (size_t n = 8; n < data.size(); n += 8) {
        uint8_t byte = 0;
        for (int k = 0; k < 8; k++) byte |= uint8_t(data[n + k] << k);
        out.push_back(byte);
    }
    if (((out[0] & 0xF) ^ (out[0] >> 4)) != 0xF) throw ProtocolViolation("PID fails its check nibble: " + hex(out));
    return out;
}

Sample Host::sample(int drive) {
    Sample s = bus_.cycle(drive);
    if (s.device && drive != kNoDrive) throw ProtocolViolation("device drove the bus while the host was transmitting");
    if (s.device && !receiving_) throw ProtocolViolation("device transmitted without being asked");
    if (s.device && s.line == SE1) throw ProtocolViolation("device drove SE1");
    now_++;
    return s;
}

void Host::cycle(int drive) { sample(drive); }

void Host::idle(uint64_t cycles) {
    uint64_t end = now_ + cycles;
    while (now_ < end) {
        if (sof_due()) send_sof();
        else cycle();
    }
}

void Host::send_sof() {
    frame_number_ = (frame_number_ + 1) & 0x7FF;
    next_sof_ += kFrameCycles;
    sofs_++;
    unsigned field = frame_number_ | unsigned(crc5(frame_number_)) << 11;
    send({pid_byte(SOF), uint8_t(field), uint8_t(field >> 8)});
}

void Host::frame_guard(size_t payload_len) {
    if (sof_due()) send_sof();
    if (next_sof_ == 0) return;
    // A transaction must end before the next SOF (token, worst-case stuffed data, handshake, turnarounds).
    uint64_t budget_bits = 3 * 35 + (payload_len + 3) * 8 * 7 / 6 + 3 * kHostTimeoutBits;
    if (now_ + budget_bits * kBitCycles >= next_sof_) {
        idle(next_sof_ - now_);
        send_sof();
    }
}

void Host::send(const std::vector<uint8_t> &packet) {
    if (eop_seen_)
        while (now_ - eop_end_ < uint64_t(kIpdMinBits * kBitCycles)) cycle();
    for (int state : line_symbols(packet))
        for (int i = 0; i < kBitCycles; i++) cycle(state);
    eop_end_ = now_ - kBitCycles;
    eop_seen_ = true;
}

void Host::bus_reset(uint64_t se0_cycles) {
    for (uint64_t i = 0; i < se0_cycles; i++) cycle(SE0);
    eop_seen_ = false;
    reset_data_toggles();
    toggles_[0][0] = toggles_[0][1] = DATA0;
    cycle(J);
    next_sof_ = now_ + 12 * kBitCycles;
}

void Host::reset_data_toggles() {
    for (int ep = 1; ep < 16; ep++) toggles_[ep][0] = toggles_[ep][1] = 0;
}

void Host::reset_toggle(int endpoint, bool in) { toggles_[endpoint & 15][in] = 0; }

std::vector<uint8_t> Host::receive() {
    struct Guard {
        bool &flag;
        ~Guard() { flag = false; }
    } guard{receiving_ = true};
    Sample s{};
    for (;;) {
        s = sample();
        if (s.line != J) break;
        if (now_ - eop_end_ > uint64_t(kHostTimeoutBits * kBitCycles)) return {};
    }
    uint64_t start = now_ - 1;
    double gap = double(start - eop_end_) / kBitCycles;
    if (s.line != K) throw ProtocolViolation("reply starts with a line state other than K");
    if (gap < kIpdMinBits) throw ProtocolViolation("reply after only " + std::to_string(gap) + " bit times");
    if (gap > kReplyMaxBits) throw ProtocolViolation("reply after " + std::to_string(gap) + " bit times");
    std::vector<std::pair<int, int>> runs;
    int state = s.line, length = 1, total = 1;
    const int max_samples = ((64 + 4) * 8 * 7 / 6 + 16) * kBitCycles;
    for (;;) {
        s = sample();
        if (++total > max_samples) throw ProtocolViolation("babble: packet longer than the largest allowed");
        if (s.line == state) {
            length++;
            continue;
        }
        runs.emplace_back(state, length);
        if (s.line == SE0) break;
        state = s.line;
        length = 1;
    }
    int se0 = 1;
    for (;;) {
        s = sample();
        if (s.line != SE0) break;
        se0++;
    }
    if (std::abs(se0 - 2 * kBitCycles) > 1) throw ProtocolViolation("EOP SE0 of " + std::to_string(se0) + " samples");
    if (s.line != J) throw ProtocolViolation("EOP ended in a state other than J");
    if (!s.device) throw ProtocolViolation("device released the bus without driving J after SE0 (7.1.13.2)");
    eop_end_ = now_ - 1;
    for (;;) {
        s = sample();
        if (!s.device) break;
        if (s.line != J) throw ProtocolViolation("K or SE0 after the EOP");
        if (now_ - eop_end_ > uint64_t(2 * kBitCycles)) throw ProtocolViolation("device kept driving the bus after its EOP");
    }
    return decode_runs(runs);
}

void Host::turnaround() {
    while (now_ - eop_end_ < uint64_t(kHostReplyBits * kBitCycles)) cycle();
}

void Host::check_data(const std::vector<uint8_t> &raw, int max_packet) {
    if (raw.size() < 3) throw ProtocolViolation("data packet shorter than its CRC16");
    size_t body = raw.size() - 3;
    uint16_t crc = uint16_t(raw[raw.size() - 2] | raw.back() << 8);
    if (crc16(raw.data() + 1, body) != crc) throw ProtocolViolation("CRC16 wrong in " + hex(raw));
    if (int(body) > max_packet) throw ProtocolViolation(std::to_string(body) + "-byte packet exceeds wMaxPacketSize");
}

void Host::setup(int address, const uint8_t request[8]) {
    frame_guard(8);
    send(token_packet(SETUP, address, 0));
    send(data_packet(DATA0, std::vector<uint8_t>(request, request + 8)));
    std::vector<uint8_t> reply = receive();
    if (reply.empty()) throw ProtocolViolation("no handshake to a SETUP (a device must ACK every SETUP, 8.5.3)");
    if (reply.size() != 1 || (reply[0] & 0xF) != ACK) throw ProtocolViolation("SETUP answered with " + hex(reply) + ", not ACK");
    toggles_[0][0] = toggles_[0][1] = DATA1;
}

InResult Host::in_transaction(int address, int endpoint, int max_packet) {
    frame_guard(size_t(max_packet));
    send(token_packet(IN, address, endpoint));
    std::vector<uint8_t> reply = receive();
    if (reply.empty()) return {Result::Timeout, {}};
    uint8_t pid = reply[0] & 0xF;
    if (reply.size() == 1 && pid == NAK) return {Result::Nak, {}};
    if (reply.size() == 1 && pid == STALL) return {Result::Stall, {}};
    if (pid != DATA0 && pid != DATA1) throw ProtocolViolation("IN answered with " + hex(reply));
    check_data(reply, max_packet);
    uint8_t &want = toggles_[endpoint][1];
    uint8_t expected = want ? want : uint8_t(DATA0);
    // Our host never loses an ACK, so a repeated toggle is the device's error (8.6.4).
    if (pid != expected) throw ProtocolViolation("IN " + std::to_string(endpoint) + ": wrong DATA toggle in " + hex(reply));
    turnaround();
    send({pid_byte(ACK)});
    want = expected == DATA0 ? DATA1 : DATA0;
    return {Result::Data, std::vector<uint8_t>(reply.begin() + 1, reply.end() - 2)};
}

Result Host::out_transaction(int address, int endpoint, const std::vector<uint8_t> &payload) {
    frame_guard(payload.size());
    uint8_t &toggle = toggles_[endpoint][0];
    uint8_t pid = toggle ? toggle : uint8_t(DATA0);
    send(token_packet(OUT, address, endpoint));
    send(data_packet(pid, payload));
    std::vector<uint8_t> reply = receive();
    if (reply.empty()) return Result::Timeout;
    if (reply.size() != 1) throw ProtocolViolation("handshake carries bytes: " + hex(reply));
    switch (reply[0] & 0xF) {
    case ACK: toggle = pid == DATA0 ? DATA1 : DATA0; return Result::Ack;
    case NAK: return Result::Nak;
    case STALL: return Result::Stall;
    default: throw ProtocolViolation("OUT answered with " + hex(reply));
    }
}

void Host::retry_wait() { idle(8 * kBitCycles); }

Result Host::control(int address, const uint8_t request[8], std::vector<uint8_t> &data, int max_packet, int nak_limit) {
    setup(address, request);
    const bool in = request[0] & 0x80;
    const size_t length = size_t(request[6] | request[7] << 8);
    int naks = 0;
    auto nak = [&]() {
        if (++naks > nak_limit) return false;
        retry_wait();
        return true;
    };
    if (in) {
        data.clear();
        while (data.size() < length) {
            InResult r = in_transaction(address, 0, max_packet);
            if (r.result == Result::Nak) {
                if (!nak()) return Result::Timeout;
                continue;
            }
            if (r.result != Result::Data) return r.result;
            data.insert(data.end(), r.payload.begin(), r.payload.end());
            if (data.size() > length) throw ProtocolViolation("control data stage longer than wLength");
            if (int(r.payload.size()) < max_packet) break;      // a short packet ends the data stage
        }
        for (;;) {
            Result r = out_transaction(address, 0, {});
            if (r == Result::Nak && nak()) continue;
            return r == Result::Nak ? Result::Timeout : r;
        }
    }
    data.resize(std::min(data.size(), length));
    for (size_t n = 0; n < data.size();) {
        size_t chunk = std::min(data.size() - n, size_t(max_packet));
        Result r = out_transaction(address, 0, std::vector<uint8_t>(data.begin() + long(n), data.begin() + long(n + chunk)));
        if (r == Result::Nak) {
            if (!nak()) return Result::Timeout;
            continue;
        }
        if (r != Result::Ack) return r;
        n += chunk;
    }
    toggles_[0][1] = DATA1;       // the status stage is a zero-length DATA1 IN
    for (;;) {
        InResult r = in_transaction(address, 0, max_packet);
        if (r.result == Result::Nak) {
            if (!nak()) return Result::Timeout;
            continue;
        }
        if (r.result != Result::Data) return r.result;
        if (!r.payload.empty()) throw ProtocolViolation("status stage carried data; it must be zero-length");
        return Result::Ack;
    }
}

}  // namespace usbhost
