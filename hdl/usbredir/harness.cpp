// Verilator harness of the USB twin: the SoC with its USB CDC-ACM device (crabwatt.soc.usbtwin),
// real firmware in its boot ROM, as a USB device to a real host. It serves usbredir on a Unix socket
// (--socket PATH; QEMU connects with `-chardev socket,id=r,path=PATH -device usb-redir,chardev=r`)
// and turns each redirected transfer into full-speed transactions on the simulated D+/D- (usb_host.h),
// SOF every simulated millisecond, so the guest's own usbcore and cdc_acm are the host.
//
// Stimulus: as hdl/twin/harness.cpp (uint16 (cv, ci) pairs, looped; with --hold none until SIGUSR1). Prints "usbredir: PATH" once
// it listens and, at the end (QEMU gone, SIGTERM, --max-seconds), one line
// "usbtwin-report: {json}" on stdout with the figures of the run; "usbtwin-time: S" every 10 ms
// of simulated time S.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include "redir.h"
#include "sim.h"
#include "stimulus.h"

namespace {

volatile std::sig_atomic_t g_stop = 0, g_release = 0;
void on_signal(int) { g_stop = 1; }
void on_release(int) { g_release = 1; }

struct Options {
    std::string stimulus, socket;
    uint64_t sample_period_cycles = CW_TWIN_SAMPLE_PERIOD_CYCLES;
    uint64_t flash_uid = 0xC0FFEE0000000001ull;
    double max_seconds = 0;
    bool hold = false;          // no samples until SIGUSR1
    // A host drives SE0 for >= 10 ms (TDRST); simulating that costs seconds of wall time per reset, so
    // the default is 0.1 ms: four times LUNA's 25 us threshold (see hdl/tests/test_usb_cdc.py).
    double reset_ms = 0.1;
};

[[noreturn]] void usage(const char *msg) {
    std::fprintf(stderr,
                 "crabwatt-usbtwin: %s\n"
                 "usage: crabwatt-usbtwin --stimulus FILE.bin --socket PATH [--sample-period-cycles N]\n"
                 "                        [--flash-uid HEX] [--max-seconds S] [--reset-ms MS] [--hold]\n", msg);
    std::exit(2);
}

Options parse(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value after " + a).c_str());
            return argv[++i];
        };
        if (a == "--stimulus") o.stimulus = value();
        else if (a == "--socket") o.socket = value();
        else if (a == "--sample-period-cycles") o.sample_period_cycles = std::strtoull(value().c_str(), nullptr, 10);
        else if (a == "--flash-uid") o.flash_uid = std::strtoull(value().c_str(), nullptr, 16);
        else if (a == "--max-seconds") o.max_seconds = std::atof(value().c_str());
        else if (a == "--reset-ms") o.reset_ms = std::atof(value().c_str());
        else if (a == "--hold") o.hold = true;
        else usage(("unknown option " + a).c_str());
    }
    if (o.stimulus.empty() || o.socket.empty()) usage("--stimulus and --socket are required");
    if (o.sample_period_cycles < 1) usage("--sample-period-cycles must be at least 1");
    if (o.max_seconds < 0 || !(o.reset_ms > 0.003)) usage("--max-seconds >= 0 and --reset-ms > 0.003 (TDETRST)");
    return o;
}

int listen_unix(const std::string &path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) usage("--socket path too long");
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    unlink(path.c_str());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || listen(fd, 1) != 0) {
        std::perror("crabwatt-usbtwin: cannot listen on the socket");
        std::exit(1);
    }
    return fd;
}

}  // namespace

int main(int argc, char **argv) {
    Options opt = parse(argc, argv);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGUSR1, on_release);

    UsbTwinSim sim(read_stimulus("crabwatt-usbtwin", opt.stimulus), opt.sample_period_cycles, opt.flash_uid);
    usbhost::Host host(sim);
    sim.hold(opt.hold);
    int server = listen_unix(opt.socket);
    std::printf("usbredir: %s\n", opt.socket.c_str());
    std::fflush(stdout);

    // The peer connects first (QEMU starts after this line); nothing runs until it has.
    pollfd p{server, POLLIN, 0};
    int fd = -1;
    while (!g_stop && fd < 0) {
        if (poll(&p, 1, 200) > 0) fd = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
    }
    if (fd < 0) return 1;
    close(server);
    unlink(opt.socket.c_str());

    auto t0 = std::chrono::steady_clock::now();
    std::clock_t cpu0 = std::clock();
    const uint64_t max_ticks = opt.max_seconds > 0 ? uint64_t(opt.max_seconds * double(CW_USB_IO_CLK_HZ)) : 0;
    const uint64_t io_period = usbhost::kFrameCycles / 20;      // the socket every 50 us simulated
    const uint64_t idle_step = usbhost::kFrameCycles / 100;     // 10 us between passes that all NAKed
    Redir redir(host, fd, uint64_t(opt.reset_ms * 1e-3 * double(CW_USB_IO_CLK_HZ)));
    std::string failure;
    double attach_wall_s = -1, attach_sim_s = -1;
    uint64_t next_io = 0, next_progress = 0;
    try {
        while (!g_stop && !sim.reboot_requested() && (!max_ticks || sim.ticks() < max_ticks)) {
            if (host.now() >= next_io) {
                if (g_release) sim.hold(false);
                if (!redir.service_io()) break;
                next_io = host.now() + io_period;
                if (host.now() >= next_progress) {
                    // Simulated time, for a runner that waits for an amount of it.
                    std::printf("usbtwin-time: %.3f\n", double(sim.ticks()) / double(CW_USB_IO_CLK_HZ));
                    std::fflush(stdout);
                    next_progress = host.now() + 10 * usbhost::kFrameCycles;
                }
            }
            if (!redir.attached() && attach_wall_s < 0) {
                if (sim.pullup()) {
                    redir.attach();
                    attach_sim_s = double(sim.ticks()) / double(CW_USB_IO_CLK_HZ);
                    attach_wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    std::fprintf(stderr, "usbtwin: device attached and addressed at %.4f s simulated\n", attach_sim_s);
                } else {
                    host.idle(idle_step);
                }
                continue;
            }
            if (!redir.step()) host.idle(idle_step);
        }
    } catch (const usbhost::ProtocolViolation &e) {
        failure = e.what();
        std::fprintf(stderr, "crabwatt-usbtwin: %s\n", e.what());
    }
    if (sim.reboot_requested()) std::fprintf(stderr, "crabwatt-usbtwin: the firmware asked for the bootloader; stopping\n");
    double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double cpu_s = double(std::clock() - cpu0) / CLOCKS_PER_SEC;
    double sim_s = double(sim.ticks()) / double(CW_USB_IO_CLK_HZ);
    if (failure.empty() && redir.stats.violations) failure = redir.last_violation;
    std::printf("usbtwin-report: {\"sim_s\": %.6f, \"wall_s\": %.3f, \"cpu_s\": %.3f, \"sim_per_wall\": %.5f, "
                "\"attach_sim_s\": %.6f, \"attach_wall_s\": %.3f, \"sofs\": %llu, \"samples\": %llu, "
                "\"bytes_in\": %llu, \"bytes_out\": %llu, \"control_transfers\": %llu, \"bus_resets\": %llu, "
                "\"naks\": %llu, \"violations\": %llu, \"failure\": \"%s\"}\n",
                sim_s, wall_s, cpu_s, wall_s > 0 ? sim_s / wall_s : 0.0, attach_sim_s, attach_wall_s,
                (unsigned long long)host.sofs_sent(), (unsigned long long)sim.samples(),
                (unsigned long long)redir.stats.bytes_in, (unsigned long long)redir.stats.bytes_out,
                (unsigned long long)redir.stats.control, (unsigned long long)redir.stats.resets,
                (unsigned long long)redir.stats.naks, (unsigned long long)redir.stats.violations, failure.c_str());
    std::fflush(stdout);
    close(fd);
    return failure.empty() ? 0 : 1;
}
