// A USB 2.0 full-speed host on a simulated device's D+/D- lines: hdl/tests/usb_host.py's rules in
// C++ (SYNC, PID check nibble, NRZI, bit stuffing, CRC5/CRC16, DATA0/DATA1 toggles, handshakes,
// inter-packet delays, the reply window, EOP shape, SOF every 1 ms, bus reset), so a real host's
// transfers (usbredir, from QEMU) reach the gateware as line-level transactions.
//
// The line is sampled at 48 MHz (4 samples per 12 Mbit/s bit), one Bus::cycle() per sample. A reply
// that breaks a rule throws ProtocolViolation: the caller fails the transfer and counts it.
#ifndef CRABWATT_USB_HOST_H
#define CRABWATT_USB_HOST_H

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace usbhost {

// Line states as D+ << 1 | D-.
enum Line : int { SE0 = 0, K = 1, J = 2, SE1 = 3 };
constexpr int kNoDrive = -1;

constexpr int kBitCycles = 4;
constexpr uint64_t kFrameCycles = 48'000;        // 1 ms full-speed frame
constexpr int kIpdMinBits = 2;                   // 7.1.18.1
constexpr int kHostTimeoutBits = 18;             // 7.1.19.1
constexpr int kHostReplyBits = 3;                // our own turnaround before a handshake
// The latest reply this host takes: 16 bit times, the least a host waits (7.1.19.1). The spec gives a
// device 6.5; LUNA's gateware PHY answers after up to 14 in hdl/tests/test_usb_cdc.py and was seen at
// 14.75 here (its clock crossings, see hdl/README.md), which a directly attached host accepts.
constexpr double kReplyMaxBits = 16.0;

enum Pid : uint8_t { OUT = 0x1, IN = 0x9, SOF = 0x5, SETUP = 0xD, DATA0 = 0x3, DATA1 = 0xB,
                     ACK = 0x2, NAK = 0xA, STALL = 0xE };

struct ProtocolViolation : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Sample {
    int line;       // the bus as resolved this cycle
    bool device;    // the device drove it
};

// The simulated bus: one 48 MHz cycle with the host driving `drive` (or kNoDrive).
class Bus {
public:
    virtual ~Bus() = default;
    virtual Sample cycle(int drive) = 0;
    virtual bool pullup() const = 0;
};

uint8_t crc5(uint16_t field11);
uint16_t crc16(const uint8_t *data, size_t n);
std::vector<uint8_t> token_packet(uint8_t pid, int address, int endpoint);
std::vector<uint8_t> data_packet(uint8_t pid, const std::vector<uint8_t> &payload);
std::vector<int> line_symbols(const std::vector<uint8_t> &packet);
// Decodes (state, samples) runs from the first K to the last state before the EOP.
std::vector<uint8_t> decode_runs(const std::vector<std::pair<int, int>> &runs);

enum class Result { Data, Ack, Nak, Stall, Timeout };

struct InResult {
    Result result;
    std::vector<uint8_t> payload;
};

class Host {
public:
    explicit Host(Bus &bus) : bus_(bus) {}

    uint64_t now() const { return now_; }
    uint64_t sofs_sent() const { return sofs_; }
    void idle(uint64_t cycles);
    void bus_reset(uint64_t se0_cycles);
    // Every data endpoint back to DATA0 (bus reset, SET_CONFIGURATION, SET_INTERFACE: 9.1.1.5).
    void reset_data_toggles();
    void reset_toggle(int endpoint, bool in);

    InResult in_transaction(int address, int endpoint, int max_packet);
    Result out_transaction(int address, int endpoint, const std::vector<uint8_t> &payload);
    void setup(int address, const uint8_t request[8]);
    // A whole control transfer (8.5.3): NAKs are retried up to `nak_limit` times per stage. Returns
    // Ack (data in `data`: read into it, or written from it), Stall or Timeout.
    Result control(int address, const uint8_t request[8], std::vector<uint8_t> &data, int max_packet,
                   int nak_limit = 20000);

private:
    void cycle(int drive = kNoDrive);
    Sample sample(int drive = kNoDrive);
    bool sof_due() const { return next_sof_ != 0 && now_ >= next_sof_; }
    void send_sof();
    void frame_guard(size_t payload_len);
    void send(const std::vector<uint8_t> &packet);
    // A packet from the device (PID byte + payload), or empty when none starts within the timeout.
    std::vector<uint8_t> receive();
    void turnaround();
    void check_data(const std::vector<uint8_t> &raw, int max_packet);
    void retry_wait();

    Bus &bus_;
    uint64_t now_ = 0, next_sof_ = 0, eop_end_ = 0, sofs_ = 0;
    bool eop_seen_ = false, receiving_ = false;
    uint16_t frame_number_ = 0;
    uint8_t toggles_[16][2] = {};    // [endpoint][in] -> next DATA PID; 0 = DATA0
};

}  // namespace usbhost

#endif
