// The USB twin's model (crabwatt.soc.usbtwin) clocked as on the board: every call to cycle() is one
// 48 MHz usb_io edge, the 12 MHz usb edge on every 4th and the SoC's 8 MHz edge on every 6th (the
// twin's system clock: see crabwatt.soc.twin.SYS_CLK_HZ). Between SoC edges it feeds the ADC pairs
// of the stimulus and answers the flash pins, as hdl/twin/harness.cpp does.
#ifndef CRABWATT_USBTWIN_SIM_H
#define CRABWATT_USBTWIN_SIM_H

#include <cstdint>
#include <memory>
#include <vector>

#include "Vcrabwatt_usbtwin.h"
#include "Vcrabwatt_usbtwin___024root.h"
#include "crabwatt_usbtwin_config.h"
#include "flash_pins.h"
#include "usb_host.h"
#include "verilated.h"

static_assert(CW_USB_IO_CLK_HZ == 4 * CW_USB_CLK_HZ, "usb is a quarter of usb_io");
static_assert(CW_USB_IO_CLK_HZ % CW_TWIN_SYS_CLK_HZ == 0, "the SoC clock divides usb_io");

class UsbTwinSim : public usbhost::Bus {
public:
    static constexpr uint64_t kSysDivider = CW_USB_IO_CLK_HZ / CW_TWIN_SYS_CLK_HZ;

    UsbTwinSim(std::vector<uint16_t> stimulus, uint64_t sample_period_cycles, uint64_t flash_uid)
        : stim_(std::move(stimulus)), sample_period_(sample_period_cycles), ctx_(new VerilatedContext),
          top_(new Vcrabwatt_usbtwin(ctx_.get())) {
        flash_.mem.resize(kFlashBytes);
        flash_model_init(&flash_.model, flash_.mem.data(), kFlashBytes, flash_uid);
        top_->rst = 1;
        top_->uart_tx_ready = 1;
        top_->clk = top_->clk_usb = top_->clk_usb_io = 1;
        for (int i = 0; i < 8 * int(kSysDivider); i++) cycle(usbhost::kNoDrive);
        top_->rst = 0;
    }
    ~UsbTwinSim() override { top_->final(); }

    usbhost::Sample cycle(int drive) override {
        Vcrabwatt_usbtwin *t = top_.get();
        usbhost::Sample s;
        s.device = t->usb_d_p_oe;
        if (s.device) s.line = t->usb_d_p_o << 1 | t->usb_d_n_o;
        else if (drive != usbhost::kNoDrive) s.line = drive;
        else s.line = t->usb_pullup ? usbhost::J : usbhost::SE0;
        t->usb_d_p_i = s.line >> 1;
        t->usb_d_n_i = s.line & 1;
        const bool sys = phase_sys_ == 0, usb = (ticks_ & 3) == 0;
        if (sys) sys_inputs();
        // One eval() per edge: the clocks stay high and Verilator's remembered previous values are
        // cleared for the clocks that rise now (as hdl/twin/harness.cpp does for its one clock), which
        // halves the evaluations of toggling them.
        Vcrabwatt_usbtwin___024root *r = t->rootp;
        r->__Vtrigrprev__TOP__clk_usb_io = 0;
        if (usb) r->__Vtrigrprev__TOP__clk_usb = 0;
        if (sys) r->__Vtrigrprev__TOP__clk = 0;
        t->eval();
        if (sys) {
            t->flash_cipo = flash_.step(t->flash_cs, t->flash_sck, t->flash_copi);
            if (t->reboot) reboot_ = true;
            if ((++sys_cycles_ & 1023) == 0)
                flash_model_elapse_us(&flash_.model, uint32_t(1024 * 1000000ull / CW_TWIN_SYS_CLK_HZ));
        }
        if (++phase_sys_ == kSysDivider) phase_sys_ = 0;
        ticks_++;
        return s;
    }
    bool pullup() const override { return top_->usb_pullup; }

    uint64_t ticks() const { return ticks_; }
    uint64_t samples() const { return sample_; }
    bool reboot_requested() const { return reboot_; }
    // No samples while held: the measurement starts at sample 0 when the host is ready to read it.
    void hold(bool on) { holding_ = on; }

private:
    static constexpr uint32_t kFlashBytes = 16u << 20;

    void sys_inputs() {
        Vcrabwatt_usbtwin *t = top_.get();
        t->sample_valid = 0;
        // None during the power-on reset either: the stimulus's first pair is the DSP's sample 0.
        if (holding_ || top_->rst) return;
        if (sample_due_ > 0) sample_due_--;
        if (sample_due_ == 0) {
            size_t k = size_t(sample_ % (stim_.size() / 2));
            t->sample_cv = stim_[2 * k];
            t->sample_ci = stim_[2 * k + 1];
            t->sample_valid = 1;
            sample_++;
            sample_due_ = sample_period_;
        }
    }

    std::vector<uint16_t> stim_;
    uint64_t sample_period_;
    std::unique_ptr<VerilatedContext> ctx_;
    std::unique_ptr<Vcrabwatt_usbtwin> top_;
    FlashPins flash_;
    uint64_t ticks_ = 0, sys_cycles_ = 0, sample_ = 0, sample_due_ = 0;
    uint64_t phase_sys_ = 0;
    bool reboot_ = false, holding_ = false;
};

#endif
