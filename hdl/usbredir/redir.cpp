// The usbredir device side (see redir.h).
#include "redir.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>
#include <usbredirparser.h>

using usbhost::Result;

namespace {

Redir *self(void *priv) { return static_cast<Redir *>(priv); }

int ep_index(uint8_t endpoint) { return ((endpoint & 0x80) >> 3) | (endpoint & 0x0F); }

void log_cb(void *, int level, const char *msg) {
    if (level <= usbredirparser_warning) std::fprintf(stderr, "usbredir: %s\n", msg);
}

}  // namespace

Redir::Redir(usbhost::Host &host, int fd, uint64_t reset_cycles) : host_(host), fd_(fd), reset_cycles_(reset_cycles) {
    parser_ = usbredirparser_create();
    parser_->priv = this;
    parser_->log_func = log_cb;
    parser_->read_func = [](void *p, uint8_t *d, int n) { return self(p)->read_fd(d, n); };
    parser_->write_func = [](void *p, uint8_t *d, int n) { return self(p)->write_fd(d, n); };
    parser_->hello_func = [](void *p, usb_redir_hello_header *) { self(p)->on_hello(); };
    parser_->reset_func = [](void *p) { self(p)->on_reset(); };
    parser_->control_packet_func = [](void *p, uint64_t id, usb_redir_control_packet_header *h, uint8_t *d, int n) {
        self(p)->on_control(id, h, d, n);
        usbredirparser_free_packet_data(self(p)->parser_, d);
    };
    parser_->bulk_packet_func = [](void *p, uint64_t id, usb_redir_bulk_packet_header *h, uint8_t *d, int n) {
        self(p)->on_bulk(id, h, d, n);
        usbredirparser_free_packet_data(self(p)->parser_, d);
    };
    parser_->set_configuration_func = [](void *p, uint64_t id, usb_redir_set_configuration_header *h) {
        self(p)->on_set_configuration(id, h->configuration);
    };
    parser_->get_configuration_func = [](void *p, uint64_t id) { self(p)->on_get_configuration(id); };
    parser_->set_alt_setting_func = [](void *p, uint64_t id, usb_redir_set_alt_setting_header *h) {
        self(p)->on_set_alt(id, h->interface, h->alt);
    };
    parser_->get_alt_setting_func = [](void *p, uint64_t id, usb_redir_get_alt_setting_header *h) {
        self(p)->on_get_alt(id, h->interface);
    };
    parser_->start_interrupt_receiving_func = [](void *p, uint64_t id, usb_redir_start_interrupt_receiving_header *h) {
        self(p)->on_start_interrupt(id, h->endpoint);
    };
    parser_->stop_interrupt_receiving_func = [](void *p, uint64_t id, usb_redir_stop_interrupt_receiving_header *h) {
        self(p)->on_stop_interrupt(id, h->endpoint);
    };
    parser_->cancel_data_packet_func = [](void *p, uint64_t id) { self(p)->on_cancel(id); };
    uint32_t caps[USB_REDIR_CAPS_SIZE] = {};
    usbredirparser_caps_set_cap(caps, usb_redir_cap_connect_device_version);
    usbredirparser_caps_set_cap(caps, usb_redir_cap_ep_info_max_packet_size);
    usbredirparser_caps_set_cap(caps, usb_redir_cap_64bits_ids);
    usbredirparser_caps_set_cap(caps, usb_redir_cap_32bits_bulk_length);
    char version[] = "crabwatt-usbtwin";
    usbredirparser_init(parser_, version, caps, USB_REDIR_CAPS_SIZE, usbredirparser_fl_usb_host);
}

Redir::~Redir() { usbredirparser_destroy(parser_); }

int Redir::read_fd(uint8_t *data, int count) {
    ssize_t n = recv(fd_, data, size_t(count), MSG_DONTWAIT);
    if (n > 0) return int(n);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    gone_ = true;
    return -1;
}

int Redir::write_fd(uint8_t *data, int count) {
    ssize_t n = send(fd_, data, size_t(count), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return int(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    gone_ = true;
    return -1;
}

bool Redir::service_io() {
    if (usbredirparser_do_read(parser_) < 0 && !gone_) {
        std::fprintf(stderr, "usbredir: the peer sent something the parser rejects; closing\n");
        gone_ = true;
    }
    while (!gone_ && usbredirparser_has_data_to_write(parser_)) {
        if (usbredirparser_do_write(parser_) < 0) gone_ = true;
        else break;      // the rest when the socket has room again
    }
    if (hello_ && attached_ && !announced_) {
        // interface_info and ep_info first: QEMU refuses a device_connect without them.
        usb_redir_interface_info_header ifs{};
        usb_redir_ep_info_header eps{};
        std::memset(eps.type, usb_redir_type_invalid, sizeof eps.type);
        eps.type[0] = eps.type[16] = usb_redir_type_control;
        eps.max_packet_size[0] = eps.max_packet_size[16] = kEp0MaxPacket;
        int interface = 0;
        for (size_t n = 0; n + 2 <= config_desc_.size() && config_desc_[n] >= 2; n += config_desc_[n]) {
            const uint8_t *d = &config_desc_[n];
            if (d[1] == 4 && n + 9 <= config_desc_.size() && d[3] == 0 && ifs.interface_count < 32) {
                interface = d[2];
                uint32_t k = ifs.interface_count++;
                ifs.interface[k] = d[2];
                ifs.interface_class[k] = d[5];
                ifs.interface_subclass[k] = d[6];
                ifs.interface_protocol[k] = d[7];
            } else if (d[1] == 5 && n + 7 <= config_desc_.size()) {
                int i = ep_index(d[2]);
                eps.type[i] = d[3] & 3;
                eps.interval[i] = d[6];
                eps.interface[i] = uint8_t(interface);
                eps.max_packet_size[i] = max_packet_[i] = uint16_t(d[4] | d[5] << 8);
            }
        }
        max_packet_[0] = max_packet_[16] = kEp0MaxPacket;
        usbredirparser_send_interface_info(parser_, &ifs);
        usbredirparser_send_ep_info(parser_, &eps);
        const uint8_t *dd = device_desc_.data();
        usb_redir_device_connect_header c{};
        c.speed = usb_redir_speed_full;
        c.device_class = dd[4];
        c.device_subclass = dd[5];
        c.device_protocol = dd[6];
        c.vendor_id = uint16_t(dd[8] | dd[9] << 8);
        c.product_id = uint16_t(dd[10] | dd[11] << 8);
        c.device_version_bcd = uint16_t(dd[12] | dd[13] << 8);
        usbredirparser_send_device_connect(parser_, &c);
        announced_ = true;
        std::fprintf(stderr, "usbtwin: announced %04x:%04x to the usbredir peer\n", c.vendor_id, c.product_id);
    }
    return !gone_;
}

Result Redir::control(uint8_t type, uint8_t request, uint16_t value, uint16_t index, std::vector<uint8_t> &data,
                      uint16_t length) {
    uint8_t setup[8] = {type, request, uint8_t(value), uint8_t(value >> 8), uint8_t(index), uint8_t(index >> 8),
                        uint8_t(length), uint8_t(length >> 8)};
    stats.control++;
    try {
        return host_.control(attached_ ? kAddress : 0, setup, data, kEp0MaxPacket);
    } catch (const usbhost::ProtocolViolation &e) {
        stats.violations++;
        last_violation = e.what();
        std::fprintf(stderr, "usbtwin: USB protocol violation by the device: %s\n", e.what());
        return Result::Timeout;
    }
}

void Redir::wire_enumerate() {
    // As a host's hub driver: reset, read the device descriptor at address 0, give it an address.
    host_.idle(usbhost::kFrameCycles);
    host_.bus_reset(reset_cycles_);
    // TRSTRCY is 10 ms; LUNA is ready at once, and each simulated ms costs wall time.
    host_.idle(usbhost::kFrameCycles);
    attached_ = false;
    std::vector<uint8_t> data;
    Result r = control(0x80, 6, 0x0100, 0, data, 64);
    if (r != Result::Ack || data.size() < 8) throw usbhost::ProtocolViolation("GET_DESCRIPTOR(device) at address 0 failed");
    data.clear();
    if (control(0x00, 5, kAddress, 0, data, 0) != Result::Ack) throw usbhost::ProtocolViolation("SET_ADDRESS failed");
    host_.idle(2 * usbhost::kFrameCycles);      // TDSETADDR
    attached_ = true;
    configuration_ = 0;
}

void Redir::attach() {
    wire_enumerate();
    std::vector<uint8_t> data;
    if (control(0x80, 6, 0x0100, 0, device_desc_, 18) != Result::Ack || device_desc_.size() != 18)
        throw usbhost::ProtocolViolation("GET_DESCRIPTOR(device) failed");
    if (control(0x80, 6, 0x0200, 0, data, 9) != Result::Ack || data.size() != 9)
        throw usbhost::ProtocolViolation("GET_DESCRIPTOR(configuration, 9) failed");
    uint16_t total = uint16_t(data[2] | data[3] << 8);
    if (control(0x80, 6, 0x0200, 0, config_desc_, total) != Result::Ack || config_desc_.size() != total)
        throw usbhost::ProtocolViolation("GET_DESCRIPTOR(configuration) failed");
}

void Redir::on_hello() { hello_ = true; }

void Redir::on_reset() {
    Transfer t{};
    t.kind = Kind::Reset;
    control_.push_back(std::move(t));
}

void Redir::on_control(uint64_t id, const void *header, const uint8_t *data, int len) {
    const auto *h = static_cast<const usb_redir_control_packet_header *>(header);
    Transfer t{};
    t.id = id;
    t.kind = Kind::Control;
    t.endpoint = h->endpoint;
    uint8_t setup[8] = {h->requesttype, h->request, uint8_t(h->value), uint8_t(h->value >> 8), uint8_t(h->index),
                        uint8_t(h->index >> 8), uint8_t(h->length), uint8_t(h->length >> 8)};
    std::memcpy(t.request, setup, 8);
    if (!(h->requesttype & 0x80) && data) t.data.assign(data, data + len);
    control_.push_back(std::move(t));
}

void Redir::on_bulk(uint64_t id, const void *header, const uint8_t *data, int len) {
    const auto *h = static_cast<const usb_redir_bulk_packet_header *>(header);
    Transfer t{};
    t.id = id;
    t.kind = Kind::Bulk;
    t.endpoint = h->endpoint;
    if (h->endpoint & 0x80) t.length = size_t(h->length) | size_t(h->length_high) << 16;
    else if (data) t.data.assign(data, data + len);
    bulk_[ep_index(h->endpoint)].push_back(std::move(t));
}

void Redir::on_set_configuration(uint64_t id, uint8_t configuration) {
    Transfer t{};
    t.id = id;
    t.kind = Kind::SetConfig;
    t.request[2] = configuration;
    control_.push_back(std::move(t));
}

void Redir::on_get_configuration(uint64_t id) {
    usb_redir_configuration_status_header s{usb_redir_success, configuration_};
    usbredirparser_send_configuration_status(parser_, id, &s);
}

void Redir::on_set_alt(uint64_t id, uint8_t interface, uint8_t alt) {
    Transfer t{};
    t.id = id;
    t.kind = Kind::SetAlt;
    t.request[2] = alt;
    t.request[4] = interface;
    control_.push_back(std::move(t));
}

void Redir::on_get_alt(uint64_t id, uint8_t interface) {
    // Every interface of this device has alternate setting 0 only.
    usb_redir_alt_setting_status_header s{usb_redir_success, interface, 0};
    usbredirparser_send_alt_setting_status(parser_, id, &s);
}

void Redir::on_start_interrupt(uint64_t id, uint8_t endpoint) {
    // The CDC notification endpoint: the gateware has nothing to notify, so it is not polled; the
    // guest's URB stays pending, as it would behind a device that NAKs it.
    usb_redir_interrupt_receiving_status_header s{usb_redir_success, endpoint};
    usbredirparser_send_interrupt_receiving_status(parser_, id, &s);
}

void Redir::on_stop_interrupt(uint64_t id, uint8_t endpoint) { on_start_interrupt(id, endpoint); }

void Redir::on_cancel(uint64_t id) {
    for (auto &queue : bulk_) {
        for (auto it = queue.begin(); it != queue.end(); ++it) {
            if (it->id == id) {
                Transfer t = std::move(*it);
                queue.erase(it);
                reply_bulk(t, usb_redir_cancelled);
                return;
            }
        }
    }
}

uint8_t Redir::status_of(Result r) {
    switch (r) {
    case Result::Ack:
    case Result::Data: return usb_redir_success;
    case Result::Stall: return usb_redir_stall;
    case Result::Nak:
    case Result::Timeout: break;
    }
    return usb_redir_ioerror;
}

int Redir::max_packet(uint8_t endpoint) const {
    int m = max_packet_[ep_index(endpoint)];
    return m > 0 ? m : 64;
}

void Redir::reply_bulk(const Transfer &t, uint8_t status) {
    usb_redir_bulk_packet_header h{};
    h.endpoint = t.endpoint;
    h.status = status;
    size_t n = (t.endpoint & 0x80) ? t.data.size() : t.sent;
    h.length = uint16_t(n);
    h.length_high = uint16_t(n >> 16);
    bool in = t.endpoint & 0x80;
    usbredirparser_send_bulk_packet(parser_, t.id, &h, in ? const_cast<uint8_t *>(t.data.data()) : nullptr,
                                    in ? int(t.data.size()) : 0);
}

void Redir::finish_control(Transfer &t) {
    switch (t.kind) {
    case Kind::Reset:
        stats.resets++;
        for (auto &queue : bulk_) queue.clear();        // QEMU abandons what was in flight
        try {
            wire_enumerate();
        } catch (const usbhost::ProtocolViolation &e) {
            // The guest finds the device gone quiet and reports it; the run counts it as a failure.
            stats.violations++;
            last_violation = e.what();
            std::fprintf(stderr, "usbtwin: re-enumeration after a bus reset failed: %s\n", e.what());
        }
        return;
    case Kind::SetConfig: {
        std::vector<uint8_t> none;
        Result r = control(0x00, 9, t.request[2], 0, none, 0);
        if (r == Result::Ack) {
            configuration_ = t.request[2];
            host_.reset_data_toggles();
        }
        usb_redir_configuration_status_header s{status_of(r), configuration_};
        usbredirparser_send_configuration_status(parser_, t.id, &s);
        return;
    }
    case Kind::SetAlt: {
        std::vector<uint8_t> none;
        Result r = control(0x01, 11, t.request[2], t.request[4], none, 0);
        if (r == Result::Ack) host_.reset_data_toggles();
        usb_redir_alt_setting_status_header s{status_of(r), t.request[4], r == Result::Ack ? t.request[2] : uint8_t(0)};
        usbredirparser_send_alt_setting_status(parser_, t.id, &s);
        return;
    }
    case Kind::Control: {
        const uint8_t *q = t.request;
        uint16_t length = uint16_t(q[6] | q[7] << 8);
        Result r = control(q[0], q[1], uint16_t(q[2] | q[3] << 8), uint16_t(q[4] | q[5] << 8), t.data, length);
        // CLEAR_FEATURE(ENDPOINT_HALT) restarts the endpoint at DATA0 on both sides (9.4.5).
        if (r == Result::Ack && q[0] == 0x02 && q[1] == 1 && q[2] == 0 && q[3] == 0)
            host_.reset_toggle(q[4] & 15, q[4] & 0x80);
        usb_redir_control_packet_header h{};
        h.endpoint = t.endpoint;
        h.requesttype = q[0];
        h.request = q[1];
        h.value = uint16_t(q[2] | q[3] << 8);
        h.index = uint16_t(q[4] | q[5] << 8);
        h.status = status_of(r);
        bool in = q[0] & 0x80;
        h.length = uint16_t(r == Result::Ack ? t.data.size() : 0);
        usbredirparser_send_control_packet(parser_, t.id, &h, in && r == Result::Ack ? t.data.data() : nullptr,
                                           in && r == Result::Ack ? int(t.data.size()) : 0);
        return;
    }
    case Kind::Bulk: return;
    }
}

bool Redir::bulk_step(Transfer &t, bool &done) {
    done = false;
    int ep = t.endpoint & 15, mps = max_packet(t.endpoint);
    try {
        if (t.endpoint & 0x80) {
            usbhost::InResult r = host_.in_transaction(kAddress, ep, mps);
            if (r.result == Result::Nak) {
                stats.naks++;
                return false;
            }
            done = true;
            if (r.result != Result::Data) {
                reply_bulk(t, status_of(r.result));
                return true;
            }
            t.data.insert(t.data.end(), r.payload.begin(), r.payload.end());
            stats.bytes_in += r.payload.size();
            if (t.data.size() > t.length) {
                reply_bulk(t, usb_redir_babble);
            } else if (int(r.payload.size()) < mps || t.data.size() == t.length) {
                reply_bulk(t, usb_redir_success);
            } else {
                done = false;
            }
            return true;
        }
        size_t chunk = std::min(t.data.size() - t.sent, size_t(mps));
        Result r = host_.out_transaction(kAddress, ep, std::vector<uint8_t>(t.data.begin() + long(t.sent),
                                                                            t.data.begin() + long(t.sent + chunk)));
        if (r == Result::Nak) {
            stats.naks++;
            return false;
        }
        done = true;
        if (r != Result::Ack) {
            reply_bulk(t, status_of(r));
            return true;
        }
        t.sent += chunk;
        stats.bytes_out += chunk;
        if (t.sent < t.data.size()) done = false;
        else reply_bulk(t, usb_redir_success);
        return true;
    } catch (const usbhost::ProtocolViolation &e) {
        stats.violations++;
        last_violation = e.what();
        std::fprintf(stderr, "usbtwin: USB protocol violation by the device: %s\n", e.what());
        done = true;
        reply_bulk(t, usb_redir_ioerror);
        return true;
    }
}

bool Redir::step() {
    bool progress = false;
    while (!control_.empty()) {
        Transfer t = std::move(control_.front());
        control_.pop_front();
        finish_control(t);
        progress = true;
    }
    for (auto &queue : bulk_) {
        if (queue.empty()) continue;
        bool done = false;
        progress |= bulk_step(queue.front(), done);
        if (done) queue.pop_front();
    }
    return progress;
}
