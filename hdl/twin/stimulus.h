// Reads a twin stimulus: a raw file of little-endian uint16 pairs (cv, ci), 14-bit ADC codes, as
// written by server/twin/stimulus.ts. Shared by the RTL twin's harness and the USB twin's.
#ifndef CRABWATT_TWIN_STIMULUS_H
#define CRABWATT_TWIN_STIMULUS_H

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// Exits with a message naming the file when it cannot be read or is not whole 14-bit pairs.
inline std::vector<uint16_t> read_stimulus(const char *program, const std::string &path) {
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) {
        std::fprintf(stderr, "%s: cannot open stimulus %s: %s\n", program, path.c_str(), std::strerror(errno));
        std::exit(1);
    }
    std::vector<uint16_t> words;
    uint8_t b[2];
    while (std::fread(b, 1, 2, f) == 2) words.push_back(uint16_t(b[0] | b[1] << 8));
    std::fclose(f);
    if (words.empty() || words.size() % 2) {
        std::fprintf(stderr, "%s: %s must hold a whole number of (cv, ci) uint16 pairs\n", program, path.c_str());
        std::exit(1);
    }
    for (uint16_t w : words) {
        if (w > 0x3FFF) {
            std::fprintf(stderr, "%s: %s holds a code above 14 bits (%u)\n", program, path.c_str(), w);
            std::exit(1);
        }
    }
    return words;
}

#endif
