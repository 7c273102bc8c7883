// The usb-host side of a usbredir connection (libusbredirparser) for the simulated device: QEMU's
// usb-redir device sends the guest's transfers, this turns them into line-level transactions
// through usbhost::Host and answers with what the gateware did.
//
// What a real usbredir host (usbredirhost over libusb) leaves to the host's kernel is done here on
// the wire: the first bus reset, SET_ADDRESS, and the descriptor reads that fill usbredir's
// interface_info/ep_info/device_connect. QEMU handles the guest's SET_ADDRESS itself and sends
// SET_CONFIGURATION/SET_INTERFACE as their own messages; those become real control transfers.
#ifndef CRABWATT_USBTWIN_REDIR_H
#define CRABWATT_USBTWIN_REDIR_H

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "usb_host.h"

struct usbredirparser;

class Redir {
public:
    Redir(usbhost::Host &host, int fd, uint64_t reset_cycles);
    ~Redir();
    Redir(const Redir &) = delete;
    Redir &operator=(const Redir &) = delete;

    // Reads and writes what the socket allows; false once the peer has gone.
    bool service_io();
    // The device attached (pull-up seen): enumerate it on the wire and announce it to QEMU.
    void attach();
    // One pass over the queued transfers (control ones run to completion, each bulk endpoint gets
    // one transaction). Returns whether any transaction made progress (not a NAK).
    bool step();
    bool attached() const { return attached_; }

    struct Stats {
        uint64_t bytes_in = 0, bytes_out = 0, control = 0, violations = 0, resets = 0, naks = 0;
    } stats;
    std::string last_violation;

    // Callbacks from the parser (public for the C trampolines in redir.cpp).
    void on_hello();
    void on_reset();
    void on_control(uint64_t id, const void *header, const uint8_t *data, int len);
    void on_bulk(uint64_t id, const void *header, const uint8_t *data, int len);
    void on_set_configuration(uint64_t id, uint8_t configuration);
    void on_get_configuration(uint64_t id);
    void on_set_alt(uint64_t id, uint8_t interface, uint8_t alt);
    void on_get_alt(uint64_t id, uint8_t interface);
    void on_start_interrupt(uint64_t id, uint8_t endpoint);
    void on_stop_interrupt(uint64_t id, uint8_t endpoint);
    void on_cancel(uint64_t id);
    int read_fd(uint8_t *data, int count);
    int write_fd(uint8_t *data, int count);

private:
    enum class Kind { Control, Bulk, SetConfig, SetAlt, Reset };
    struct Transfer {
        uint64_t id;
        Kind kind;
        uint8_t endpoint;
        uint8_t request[8];
        std::vector<uint8_t> data;     // OUT: to send; IN: received so far
        size_t length = 0;             // IN: requested bytes
        size_t sent = 0;               // OUT: bytes ACKed
    };

    static constexpr int kAddress = 1;
    static constexpr int kEp0MaxPacket = 64;

    void wire_enumerate();
    void finish_control(Transfer &t);
    bool bulk_step(Transfer &t, bool &done);
    void reply_bulk(const Transfer &t, uint8_t status);
    uint8_t status_of(usbhost::Result r);
    int max_packet(uint8_t endpoint) const;
    usbhost::Result control(uint8_t type, uint8_t request, uint16_t value, uint16_t index,
                            std::vector<uint8_t> &data, uint16_t length);

    usbhost::Host &host_;
    int fd_;
    uint64_t reset_cycles_;
    usbredirparser *parser_ = nullptr;
    bool hello_ = false, attached_ = false, announced_ = false, gone_ = false;
    uint8_t configuration_ = 0;
    std::vector<uint8_t> device_desc_, config_desc_;
    uint16_t max_packet_[32] = {};
    std::deque<Transfer> control_;      // control, configuration, alt setting and reset, in order
    std::deque<Transfer> bulk_[32];     // per usbredir endpoint index ((ep & 0x80) >> 3 | ep & 15)
};

#endif
