// The configuration flash on the twin's SPI pins: firmware/test/flash_model.c (the native tests'
// model, C written to compile as C++ too), driven bit by bit as the SoC's SpiFlashMaster drives it.
#ifndef CRABWATT_TWIN_FLASH_PINS_H
#define CRABWATT_TWIN_FLASH_PINS_H

#include <algorithm>
#include <cstdint>
#include <vector>

#include "flash_model.h"
#include "flash_model.c"

// The flash's side of SPI mode 0: COPI sampled on SCK rising edges, CIPO changed after falling edges
// (and at selection), a byte at a time through the byte-level model.
struct FlashPins {
    flash_model_t model{};
    std::vector<uint8_t> mem;
    bool prev_sck = false, prev_cs = false;
    uint8_t in_byte = 0, out_byte = 0xFF;
    int in_bits = 0, out_bit = 7;

    // Called after each clock edge with the pins the SoC drives; returns CIPO for the next cycle.
    uint8_t step(bool cs, bool sck, bool copi) {
        if (cs != prev_cs) {
            flash_model_select(&model, cs);
            in_bits = 0;
            out_byte = flash_model_out(&model);
            out_bit = 7;
        } else if (cs && sck && !prev_sck) {
            in_byte = uint8_t(in_byte << 1 | (copi ? 1 : 0));
            in_bits++;
        } else if (cs && !sck && prev_sck) {
            if (in_bits == 8) {
                flash_model_in(&model, in_byte);
                in_bits = 0;
                out_byte = flash_model_out(&model);
                out_bit = 7;
            } else {
                out_bit--;
            }
        }
        prev_sck = sck;
        prev_cs = cs;
        return uint8_t((out_byte >> std::max(out_bit, 0)) & 1);
    }
};

#endif
