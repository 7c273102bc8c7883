// Verilator harness of the crabwatt RTL twin.
//
// Drives the twin top (crabwatt.soc.twin): a clock at SYS_CLK_HZ, one ADC pair from the stimulus
// every SAMPLE_PERIOD_CYCLES cycles, and the UART byte streams to a pseudo-terminal (openpty; the
// slave's path is printed on stdout as "pty: PATH") or to a file (--tx-file, for tests).
//
// Stimulus: a raw file of little-endian uint16 pairs (cv, ci), 14-bit ADC codes, as written by
// server/twin/stimulus.ts from test/vectors/*.json. With --loop it repeats; otherwise the run ends
// --drain-ms simulated milliseconds after the last pair.
//
// The configuration flash is firmware/test/flash_model.c (a W25Q128JV, 16 MiB, as on the r0.2) on the
// SPI pins, driven bit by bit in mode 0; --flash-file keeps its contents across runs (read at start
// when the file exists, written at the end), so a calibration saved in one run is found by the next,
// as after a reboot of a board. --flash-uid sets its unique ID, --no-flash leaves the pins unanswered.
//
// The ADC's read timing is modelled (adc_read.h): each stimulus pair is what the AD7357 converts, and
// the twin gets the codes the gateware's capture point (ADC.READ_DELAY, moved by its PLL phase stepper)
// reads, halved, garbled or right; --adc-round-trip-ns, --adc-t4-ns, --adc-t7-ns set the timing
// (defaults: a 2 ns round trip and the datasheet's worst case, where the reset READ_DELAY reads right).
//
// Host-to-device bytes enter the UART's receive FIFO no faster than the board's line brings them
// (--rx-byte-cycles, see kRxByteCycles): the FIFO drops what it has no room for, as the board's
// does, so a burst fed at one byte per cycle would lose everything past its first 64 bytes.

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <memory>
#include <pty.h>
#include <sys/ioctl.h>
#include <string>
#include <termios.h>
#include <unistd.h>
#include <vector>

#include "Vcrabwatt_twin.h"
#include "Vcrabwatt_twin___024root.h"
#include "crabwatt_twin_config.h"
#include "adc_read.h"
#include "flash_pins.h"
#include "stimulus.h"
#include "verilated.h"

namespace {

constexpr uint64_t kSysClkHz = CW_TWIN_SYS_CLK_HZ;
constexpr double kSampleRateHz = 4e6;
// Cycles between host-to-device bytes: an 8N1 byte (10 bits) at the board's 3 Mbaud
// (firmware/src/hal_soc.c) on its 48 MHz clock. The twin's clock is 6x slower than the board's for
// the same sample rate, so pacing bytes by simulated time would give the firmware 6x fewer cycles
// per byte than it has on the board; pacing by cycles gives it the board's margin exactly.
constexpr uint64_t kRxByteCycles = 10 * 48'000'000 / 3'000'000;
// The board's system clock, for the caveat in the report: its CPU has 12 cycles per sample pair.
constexpr double kBoardClkHz = 48e6;

// One rising edge per eval(). Verilator finds an edge by comparing clk with the value it saw at
// the previous eval(), so a clock toggled the usual way costs two evals a cycle, and each runs the
// input-combinational logic (the DSP's stage 0 hangs off the sample inputs: a third of the time).
// Holding clk high and clearing the remembered value instead makes every eval() one edge. The
// member is Verilator's own (5.x); where it is missing the harness toggles the clock instead.
template <class Root>
auto rearm_rising_edge(Root *root, int) -> decltype(root->__Vtrigrprev__TOP__clk = 0, true)
{
    root->__Vtrigrprev__TOP__clk = 0;
    return true;
}
template <class Root>
bool rearm_rising_edge(Root *, long) { return false; }

// Advances the model by one clock cycle (the inputs already set for it).
inline void clock_cycle(Vcrabwatt_twin *top)
{
    if (rearm_rising_edge(top->rootp, 0)) {
        top->clk = 1;
        top->eval();
    } else {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
    }
}

constexpr uint32_t kFlashBytes = 16u << 20;
constexpr uint64_t kFlashUniqueId = 0xC0FFEE0000000001ull;

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_releases = 0;   // SIGUSR1s received
void on_signal(int) { g_stop = 1; }
void on_release(int) { g_releases = g_releases + 1; }

struct Options {
    std::string stimulus;
    std::string tx_file;
    std::string rx_file;       // bytes to send to the device at start (tests); pty input otherwise
    bool loop = false;
    bool pty = true;
    bool hold = false;         // no samples until SIGUSR1 (the host configures the DSP first)
    // Stop before these sample indices until the next SIGUSR1 (printing "paused: N"), so a host can
    // commit a configuration at exactly that boundary.
    std::vector<uint64_t> pause_at;
    double drain_ms = 50.0;
    double max_seconds = 0;    // simulated seconds; 0 = no limit
    // Cycles between pairs: the default gives 4 Msps. The vectors compress mains cycles ~1000x (about
    // 200 samples per cycle), so tests slow the stream down to keep the firmware's load per window
    // realistic; the DSP's results depend on sample indices only, not on this spacing.
    uint64_t sample_period_cycles = CW_TWIN_SAMPLE_PERIOD_CYCLES;
    uint64_t rx_byte_cycles = kRxByteCycles;
    std::string flash_file;
    uint64_t flash_uid = kFlashUniqueId;
    bool flash = true;
    AdcTiming adc;
};

[[noreturn]] void usage(const char *msg) {
    std::fprintf(stderr,
                 "crabwatt-twin: %s\n"
                 "usage: crabwatt-twin --stimulus FILE.bin [--loop] [--hold] [--pause-at N]... [--tx-file FILE]\n"
                 "                     [--rx-file FILE]\n"
                 "                     [--no-pty] [--drain-ms MS] [--max-seconds S] [--sample-period-cycles N]\n"
                 "                     [--rx-byte-cycles N] [--flash-file FILE] [--flash-uid HEX] [--no-flash]\n"
                 "                     [--adc-round-trip-ns NS] [--adc-t4-ns NS] [--adc-t7-ns NS]\n", msg);
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
        else if (a == "--tx-file") o.tx_file = value();
        else if (a == "--rx-file") o.rx_file = value();
        else if (a == "--loop") o.loop = true;
        else if (a == "--hold") o.hold = true;
        else if (a == "--pause-at") o.pause_at.push_back(std::strtoull(value().c_str(), nullptr, 10));
        else if (a == "--no-pty") o.pty = false;
        else if (a == "--drain-ms") o.drain_ms = std::atof(value().c_str());
        else if (a == "--max-seconds") o.max_seconds = std::atof(value().c_str());
        else if (a == "--sample-period-cycles") o.sample_period_cycles = std::strtoull(value().c_str(), nullptr, 10);
        else if (a == "--rx-byte-cycles") o.rx_byte_cycles = std::strtoull(value().c_str(), nullptr, 10);
        else if (a == "--flash-file") o.flash_file = value();
        else if (a == "--flash-uid") o.flash_uid = std::strtoull(value().c_str(), nullptr, 16);
        else if (a == "--no-flash") o.flash = false;
        else if (a == "--adc-round-trip-ns") o.adc.round_trip_ns = std::atof(value().c_str());
        else if (a == "--adc-t4-ns") o.adc.t4_ns = std::atof(value().c_str());
        else if (a == "--adc-t7-ns") o.adc.t7_ns = std::atof(value().c_str());
        else usage(("unknown option " + a).c_str());
    }
    if (o.stimulus.empty()) usage("--stimulus is required");
    std::sort(o.pause_at.begin(), o.pause_at.end());
    o.pause_at.erase(std::unique(o.pause_at.begin(), o.pause_at.end()), o.pause_at.end());
    // --hold is a pause before sample 0.
    if (o.hold && (o.pause_at.empty() || o.pause_at.front() != 0)) o.pause_at.insert(o.pause_at.begin(), 0);
    if (o.drain_ms < 0 || o.max_seconds < 0) usage("times must not be negative");
    if (o.sample_period_cycles < 1) usage("--sample-period-cycles must be at least 1");
    if (o.rx_byte_cycles < 1) usage("--rx-byte-cycles must be at least 1");
    if (!(o.adc.round_trip_ns >= 0) || !(o.adc.t4_ns >= 0) || !(o.adc.t7_ns >= 0)) usage("ADC times must not be negative");
    return o;
}

}  // namespace

int main(int argc, char **argv) {
    Options opt = parse(argc, argv);
    std::vector<uint16_t> stim = read_stimulus("crabwatt-twin", opt.stimulus);
    const size_t pairs = stim.size() / 2;

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGUSR1, on_release);

    int master = -1, slave = -1;
    if (opt.pty) {
        char name[256];
        struct termios raw;
        cfmakeraw(&raw);
        if (openpty(&master, &slave, name, &raw, nullptr) != 0) {
            std::perror("crabwatt-twin: openpty");
            return 1;
        }
        // Keep the slave open ourselves so the master never sees EIO while no client is attached.
        fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
        std::printf("pty: %s\n", name);
        std::fflush(stdout);
    }
    FILE *tx_file = nullptr;
    if (!opt.tx_file.empty()) {
        tx_file = std::fopen(opt.tx_file.c_str(), "wb");
        if (!tx_file) {
            std::fprintf(stderr, "crabwatt-twin: cannot write %s: %s\n", opt.tx_file.c_str(), std::strerror(errno));
            return 1;
        }
    }
    std::deque<uint8_t> rx_queue;   // host -> device
    if (!opt.rx_file.empty()) {
        FILE *f = std::fopen(opt.rx_file.c_str(), "rb");
        if (!f) {
            std::fprintf(stderr, "crabwatt-twin: cannot open %s: %s\n", opt.rx_file.c_str(), std::strerror(errno));
            return 1;
        }
        int c;
        while ((c = std::fgetc(f)) != EOF) rx_queue.push_back(uint8_t(c));
        std::fclose(f);
    }

    AdcRead adc(opt.adc);
    FlashPins flash;
    flash.mem.resize(kFlashBytes);
    flash_model_init(&flash.model, flash.mem.data(), kFlashBytes, opt.flash_uid);
    flash.model.absent = !opt.flash;
    if (!opt.flash_file.empty()) {
        if (FILE *f = std::fopen(opt.flash_file.c_str(), "rb")) {
            size_t n = std::fread(flash.mem.data(), 1, kFlashBytes, f);
            std::fclose(f);
            if (n != kFlashBytes) {
                std::fprintf(stderr, "crabwatt-twin: %s is not a %u-byte flash image\n", opt.flash_file.c_str(), kFlashBytes);
                return 1;
            }
        }
    }

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vcrabwatt_twin>(ctx.get());
    top->clk = 0;
    top->rst = 1;
    top->uart_tx_ready = 1;
    top->eval();
    for (int i = 0; i < 8; i++) {
        top->clk = 1; top->eval();
        top->clk = 0; top->eval();
    }
    top->rst = 0;

    std::vector<uint8_t> tx_pending;    // device -> host, not yet accepted by the pty
    const uint64_t drain_cycles = uint64_t(opt.drain_ms * 1e-3 * double(kSysClkHz));
    const uint64_t max_cycles = opt.max_seconds > 0 ? uint64_t(opt.max_seconds * double(kSysClkHz)) : 0;
    uint64_t cycle = 0, sample = 0, end_cycle = 0, tx_bytes = 0, rx_bytes = 0;
    uint64_t sample_due = 0;            // cycles until the next pair may enter (a count-down, no division)
    uint64_t rx_next_cycle = 0;         // the line's next byte arrives no earlier than this cycle
    auto t0 = std::chrono::steady_clock::now();
    std::clock_t cpu0 = std::clock();

    // Each cycle: the inputs are set, the handshakes are taken from the outputs as the last edge left
    // them (the twin's UART streams come straight from FIFO registers and a constant ready), then one
    // rising edge.
    size_t next_gate = 0, announced_gate = SIZE_MAX;
    while (!g_stop) {
        // Gate k (the k-th pause, in sample order) opens with the (k+1)-th SIGUSR1.
        while (next_gate < opt.pause_at.size() && opt.pause_at[next_gate] < sample) next_gate++;
        bool at_gate = next_gate < opt.pause_at.size() && opt.pause_at[next_gate] == sample;
        bool holding = at_gate && uint64_t(g_releases) <= next_gate;
        if (holding && announced_gate != next_gate) {
            std::printf("paused: %llu\n", (unsigned long long)sample);
            std::fflush(stdout);
            announced_gate = next_gate;
        }
        bool stim_done = !opt.loop && sample >= pairs;
        // A pause at the end of the stimulus holds the drain too: the host commits there first.
        if (stim_done && !holding && end_cycle == 0) end_cycle = cycle + drain_cycles;
        if (end_cycle && cycle >= end_cycle) break;
        if (max_cycles && cycle >= max_cycles) break;

        top->sample_valid = 0;
        if (sample_due > 0) sample_due--;
        if (!holding && !stim_done && sample_due == 0) {
            size_t k = size_t(sample % pairs);
            uint16_t cv = stim[2 * k], ci = stim[2 * k + 1];
            top->adc_error = adc.convert(top->adc_read_delay, cv, ci);
            top->sample_cv = cv;
            top->sample_ci = ci;
            top->sample_valid = 1;
            sample++;
            sample_due = opt.sample_period_cycles;
        }
        top->uart_tx_ready = tx_pending.size() < 4096;
        bool rx_now = !rx_queue.empty() && cycle >= rx_next_cycle;
        top->uart_rx_valid = rx_now;
        if (rx_now) top->uart_rx_data = rx_queue.front();
        if (top->uart_tx_valid && top->uart_tx_ready) {
            tx_pending.push_back(top->uart_tx_data);
            tx_bytes++;
        }
        if (rx_now && top->uart_rx_ready) {
            rx_queue.pop_front();
            rx_bytes++;
            rx_next_cycle = cycle + opt.rx_byte_cycles;
        }
        clock_cycle(top.get());
        cycle++;
        top->flash_cipo = flash.step(top->flash_cs, top->flash_sck, top->flash_copi);

        if (top->reboot) {
            std::fprintf(stderr, "crabwatt-twin: the firmware asked for the bootloader; stopping\n");
            break;
        }

        // Service the host side every 1024 cycles (128 us of simulated time at 8 MHz): a system call
        // per cycle would cost more than the model.
        if ((cycle & 1023) == 0) flash_model_elapse_us(&flash.model, uint32_t(1024 * 1000000ull / kSysClkHz));
        if ((cycle & 1023) == 0 && (!tx_pending.empty() || master >= 0)) {
            if (tx_file && !tx_pending.empty()) {
                std::fwrite(tx_pending.data(), 1, tx_pending.size(), tx_file);
                tx_pending.clear();
            } else if (master >= 0 && !tx_pending.empty()) {
                // The pty gets whole frames only (up to the last 0x00 delimiter): a host opening the
                // port flushes its input (node-serialport does), and a flush inside a frame would
                // leave the host that frame's tail, a CRC error no device fault caused. Output that
                // never delimits (a program other than the crabwatt firmware) goes out in 2 KiB runs.
                auto last = std::find(tx_pending.rbegin(), tx_pending.rend(), uint8_t(0));
                size_t whole = size_t(tx_pending.rend() - last);
                if (whole == 0 && tx_pending.size() >= 2048) whole = tx_pending.size();
                ssize_t n = whole > 0 ? write(master, tx_pending.data(), whole) : 0;
                if (n > 0) tx_pending.erase(tx_pending.begin(), tx_pending.begin() + n);
            } else if (master < 0) {
                tx_pending.clear();
            }
            if (master >= 0) {
                uint8_t buf[256];
                ssize_t n = read(master, buf, sizeof buf);
                for (ssize_t i = 0; i < n; i++) rx_queue.push_back(buf[i]);
            }
        }
    }
    if (tx_file) {
        std::fwrite(tx_pending.data(), 1, tx_pending.size(), tx_file);
        std::fclose(tx_file);
    } else if (master >= 0) {
        // Hand over the last bytes and wait (up to 2 s) until the reader has taken them: closing the
        // master would hang up the slave and discard what it still holds.
        for (int tries = 0; tries < 400; tries++) {
            if (!tx_pending.empty()) {
                ssize_t n = write(master, tx_pending.data(), tx_pending.size());
                if (n > 0) tx_pending.erase(tx_pending.begin(), tx_pending.begin() + n);
            }
            int unread = 0;
            if (tx_pending.empty() && (ioctl(slave, FIONREAD, &unread) != 0 || unread == 0)) break;
            usleep(5000);
        }
    }
    if (!opt.flash_file.empty()) {
        FILE *f = std::fopen(opt.flash_file.c_str(), "wb");
        if (!f || std::fwrite(flash.mem.data(), 1, kFlashBytes, f) != kFlashBytes || std::fclose(f) != 0) {
            std::fprintf(stderr, "crabwatt-twin: cannot write the flash image %s: %s\n", opt.flash_file.c_str(),
                         std::strerror(errno));
            return 1;
        }
    }
    double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Two measures of speed: simulated clock time per wall second, and ADC samples per wall second
    // against a real device's 4 Msps (they agree at the default sample spacing).
    // CPU time is also reported: on a shared machine it is the repeatable figure.
    double cpu_s = double(std::clock() - cpu0) / CLOCKS_PER_SEC;
    double sim_s = double(cycle) / double(kSysClkHz);
    double sample_s = double(sample) / kSampleRateHz;
    // The twin's clock is slower than the board's, so its CPU has fewer cycles per sample pair: the
    // firmware's margin here is smaller than on the board, never larger.
    std::fprintf(stderr,
                 "crabwatt-twin: %llu cycles (%.2f MHz simulated clock), %llu sample pairs, %llu bytes out, "
                 "%llu bytes in, %.3f s wall, %.3f s CPU; clock %.4f of real time (%.4f per CPU second), "
                 "samples %.4f of real time; CPU cycles per sample pair %llu (the board: %.0f)\n",
                 (unsigned long long)cycle, wall_s > 0 ? double(cycle) / wall_s / 1e6 : 0.0,
                 (unsigned long long)sample, (unsigned long long)tx_bytes, (unsigned long long)rx_bytes,
                 wall_s, cpu_s, wall_s > 0 ? sim_s / wall_s : 0.0, cpu_s > 0 ? sim_s / cpu_s : 0.0,
                 wall_s > 0 ? sample_s / wall_s : 0.0, (unsigned long long)opt.sample_period_cycles,
                 kBoardClkHz / kSampleRateHz);
    top->final();
    return 0;
}
