#include "../src/crc32c.h"
#include "check.h"

#include <string.h>

static uint32_t crc32c_bitwise(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t k = 0; k < len; k++) {
        crc ^= data[k];
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 1u) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
    }
    return ~crc;
}

TEST(crc32c_check_value)
{
    const char *s = "123456789";
    CHECK_EQ(crc32c((const uint8_t *)s, strlen(s)), 0xE3069283u);
}

TEST(crc32c_known_vectors)
{
    /* RFC 3720 (iSCSI) appendix B.4: 32 bytes of zeros, of 0xFF, and an incrementing pattern. */
    uint8_t buf[32];
    memset(buf, 0, sizeof buf);
    CHECK_EQ(crc32c(buf, sizeof buf), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof buf);
    CHECK_EQ(crc32c(buf, sizeof buf), 0x62A8AB43u);
    for (int k = 0; k < 32; k++) buf[k] = (uint8_t)k;
    CHECK_EQ(crc32c(buf, sizeof buf), 0x46DD794Eu);
    CHECK_EQ(crc32c(buf, 0), 0u);
}

TEST(crc32c_table_matches_polynomial)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        CHECK_EQ(crc32c_table[n], c);
    }
}

TEST(crc32c_streaming_equals_one_shot)
{
    uint8_t buf[1100];
    uint32_t x = 12345u;
    for (size_t k = 0; k < sizeof buf; k++) {
        x = x * 1103515245u + 12345u;
        buf[k] = (uint8_t)(x >> 16);
    }
    for (size_t split = 0; split <= sizeof buf; split += 37) {
        uint32_t crc = crc32c_update(CRC32C_INIT, buf, split);
        crc = crc32c_final(crc32c_update(crc, buf + split, sizeof buf - split));
        CHECK_EQ(crc, crc32c_bitwise(buf, sizeof buf));
    }
}
