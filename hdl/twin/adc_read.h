// The AD7357's serial read as the gateware's capture point sees it, for the twin: each stimulus pair
// is a conversion, and what the input register takes at ADC.READ_DELAY is computed from the timing
// (hdl/crabwatt/adc.py; hdl/tests/ad7357_model.py is the gateware tests' cycle-level model of it).
//
// A frame is 18 SCLK periods T (72 MHz). Bit 0 (LZ1) is driven from CS; bit m (1..15: LZ2, D13..D0)
// is shifted out by the falling edge of SCLK pulse m, which the FPGA launches at m·T + T/2; the edge's
// effect reaches the FPGA's input a round trip later (output + input delay + traces). The line holds
// the old bit until t7 after that and the new one from t4 after it; a read within the register's
// aperture of that change takes a random bit. Bit k is read read_delay/64 periods after the launch of
// pulse k + 1. After the 16th edge the line is three-state and keeps D0's charge; from the next CS
// fall (plus t3) it is the next frame's LZ1.
#ifndef CRABWATT_TWIN_ADC_READ_H
#define CRABWATT_TWIN_ADC_READ_H

#include <cstdint>

struct AdcTiming {
    double round_trip_ns = 2.0;  // FPGA output register -> ADC pin -> FPGA input register
    double t4_ns = 11.0;         // data access after SCLK falling (datasheet maximum)
    double t7_ns = 3.5;          // data hold after SCLK falling (datasheet minimum)
    double t3_ns = 6.0;          // first leading zero after CS falling
    double aperture_ns = 1.0;    // the input register's setup + hold window
};

class AdcRead {
public:
    static constexpr int kSteps = 64;       // read_delay steps per period
    static constexpr int kFrame = 18;       // periods per conversion
    static constexpr int kBits = 16;

    explicit AdcRead(const AdcTiming &t) : t_(t) {}

    // One conversion: the stimulus codes (14 bit) in, the codes the capture point reads out; returns
    // whether the leading zeros read wrong (the gateware counts that in adc_errors).
    bool convert(int read_delay, uint16_t &cv, uint16_t &ci) {
        uint32_t word_v = cv, word_i = ci;   // 16-bit frames: two leading zeros then D13..D0
        uint32_t got_v = 0, got_i = 0;
        for (int k = 0; k < kBits; k++) {
            double t = (k + 1) * kT + read_delay * kT / kSteps;
            got_v = got_v << 1 | line(t, word_v, prev_d0_v_);
            got_i = got_i << 1 | line(t, word_i, prev_d0_i_);
        }
        prev_d0_v_ = word_v & 1;
        prev_d0_i_ = word_i & 1;
        cv = uint16_t(got_v & 0x3FFF);
        ci = uint16_t(got_i & 0x3FFF);
        return ((got_v | got_i) & 0xC000) != 0;
    }

private:
    static constexpr double kT = 1000.0 / 72.0;   // ns

    static uint32_t bit(uint32_t word, int m) { return m >= kBits ? word & 1 : word >> (kBits - 1 - m) & 1; }

    uint32_t random_bit() {
        rng_ ^= rng_ << 13;
        rng_ ^= rng_ >> 17;
        rng_ ^= rng_ << 5;
        return rng_ & 1;
    }

    // What the input register takes at time t (ns from the launch of this frame's CS fall).
    uint32_t line(double t, uint32_t word, uint32_t prev_d0) {
        const double half = t_.aperture_ns / 2;
        const double next_frame = kFrame * kT + t_.round_trip_ns;
        if (t >= next_frame) {   // the next conversion: D0's charge until LZ1 is driven
            double since = t - next_frame;
            if (since + half < t_.t3_ns) return word & 1;
            return (word & 1) ? random_bit() : 0;   // past the next frame's LZ1 only garbage would follow
        }
        if (t - half < t_.round_trip_ns + t_.t3_ns) {   // before LZ1 is driven: the last frame's D0
            if (t + half <= t_.round_trip_ns) return prev_d0;
            return prev_d0 ? random_bit() : 0;
        }
        int m = 0;   // the bit the line shows: edges 1..15 whose new bit has settled
        for (int edge = 1; edge < kBits; edge++) {
            double at = edge * kT + kT / 2 + t_.round_trip_ns;
            if (t + half <= at + t_.t7_ns) break;
            if (t - half < at + t_.t4_ns) return bit(word, edge - 1) == bit(word, edge) ? bit(word, edge) : random_bit();
            m = edge;
        }
        return bit(word, m);
    }

    AdcTiming t_;
    uint32_t prev_d0_v_ = 0, prev_d0_i_ = 0;
    uint32_t rng_ = 0x2545F491u;
};

#endif
