#include "../src/cobs.h"
#include "check.h"

#include <string.h>

static int encodes_to(const uint8_t *raw, size_t len, const uint8_t *want, size_t want_len)
{
    uint8_t out[600];
    size_t n = cobs_encode(raw, len, out, sizeof out);
    return n == want_len && memcmp(out, want, n) == 0;
}

TEST(cobs_paper_examples)
{
    /* The examples of the COBS paper and its usual tables. */
    CHECK(encodes_to((const uint8_t[]){0x00}, 1, (const uint8_t[]){0x01, 0x01}, 2));
    CHECK(encodes_to((const uint8_t[]){0x00, 0x00}, 2, (const uint8_t[]){0x01, 0x01, 0x01}, 3));
    CHECK(encodes_to((const uint8_t[]){0x00, 0x11, 0x00}, 3, (const uint8_t[]){0x01, 0x02, 0x11, 0x01}, 4));
    CHECK(encodes_to((const uint8_t[]){0x11, 0x22, 0x00, 0x33}, 4,
                     (const uint8_t[]){0x03, 0x11, 0x22, 0x02, 0x33}, 5));
    CHECK(encodes_to((const uint8_t[]){0x11, 0x22, 0x33, 0x44}, 4,
                     (const uint8_t[]){0x05, 0x11, 0x22, 0x33, 0x44}, 5));
    CHECK(encodes_to((const uint8_t[]){0x11, 0x00, 0x00, 0x00}, 4,
                     (const uint8_t[]){0x02, 0x11, 0x01, 0x01, 0x01}, 5));
    CHECK(encodes_to(NULL, 0, (const uint8_t[]){0x01}, 1));
}

TEST(cobs_long_runs)
{
    uint8_t raw[600];
    uint8_t want[600];
    /* 254 non-zero bytes: one full run, then an empty final run (the paper's encoding). */
    for (int k = 0; k < 254; k++) raw[k] = (uint8_t)(k + 1);
    want[0] = 0xFF;
    memcpy(want + 1, raw, 254);
    want[255] = 0x01;
    CHECK(encodes_to(raw, 254, want, 256));
    /* The decoder also accepts the shorter form some encoders produce. */
    uint8_t dec[300];
    CHECK_EQ(cobs_decode(want, 255, dec, sizeof dec), 254);
    /* 255 non-zero bytes: a full run, then a run of one. */
    raw[254] = 0xFF;
    want[255] = 0x02;
    want[256] = 0xFF;
    CHECK(encodes_to(raw, 255, want, 257));
    /* 254 non-zero bytes then a zero: full run, then an empty run for the zero, then the end. */
    raw[254] = 0x00;
    want[255] = 0x01;
    want[256] = 0x01;
    CHECK(encodes_to(raw, 255, want, 257));
}

TEST(cobs_round_trip_random)
{
    uint8_t raw[1100], enc[COBS_MAX_ENCODED_BYTES(1100)], dec[1100];
    uint32_t x = 99u;
    for (int trial = 0; trial < 2000; trial++) {
        x = x * 1664525u + 1013904223u;
        size_t len = x % sizeof raw;
        int zero_odds = (int)(x >> 28); /* from all zeros to almost none */
        for (size_t k = 0; k < len; k++) {
            x = x * 1664525u + 1013904223u;
            raw[k] = ((int)((x >> 8) & 15) < zero_odds) ? (uint8_t)(x >> 24) : 0;
        }
        size_t n = cobs_encode(raw, len, enc, sizeof enc);
        CHECK(n > 0 && n <= COBS_MAX_ENCODED_BYTES(len));
        CHECK(memchr(enc, 0, n) == NULL);
        long m = cobs_decode(enc, n, dec, sizeof dec);
        CHECK_EQ(m, len);
        CHECK(m >= 0 && memcmp(dec, raw, len) == 0);
        /* In place as well. */
        m = cobs_decode(enc, n, enc, sizeof enc);
        CHECK(m == (long)len && memcmp(enc, raw, len) == 0);
    }
}

TEST(cobs_encode_reports_small_buffer)
{
    uint8_t raw[300];
    uint8_t out[400];
    memset(raw, 0x55, sizeof raw);
    size_t need = cobs_encode(raw, sizeof raw, out, sizeof out);
    CHECK_EQ(need, 302);
    for (size_t cap = 0; cap < need; cap++) {
        CHECK_EQ(cobs_encode(raw, sizeof raw, out, cap), 0);
    }
    CHECK_EQ(cobs_encode(raw, sizeof raw, out, need), need);
}

TEST(cobs_decode_rejects_malformed)
{
    uint8_t out[16];
    /* A code that runs past the end, a zero inside, a zero code. */
    CHECK_EQ(cobs_decode((const uint8_t[]){0x05, 0x11, 0x22}, 3, out, sizeof out), -1);
    CHECK_EQ(cobs_decode((const uint8_t[]){0x03, 0x11, 0x00}, 3, out, sizeof out), -1);
    CHECK_EQ(cobs_decode((const uint8_t[]){0x00}, 1, out, sizeof out), -1);
    /* Output that does not fit. */
    CHECK_EQ(cobs_decode((const uint8_t[]){0x05, 0x11, 0x22, 0x33, 0x44}, 5, out, 3), -1);
    CHECK_EQ(cobs_decode((const uint8_t[]){0x02, 0x11, 0x01}, 3, out, 1), -1);
    CHECK_EQ(cobs_decode((const uint8_t[]){0x02, 0x11, 0x01}, 3, out, 2), 2);
}

TEST(cobs_streaming_equals_one_shot)
{
    uint8_t raw[700], one[COBS_MAX_ENCODED_BYTES(700)], streamed[COBS_MAX_ENCODED_BYTES(700)];
    uint32_t x = 7u;
    for (size_t k = 0; k < sizeof raw; k++) {
        x = x * 1664525u + 1013904223u;
        raw[k] = (x >> 29) == 0 ? 0 : (uint8_t)(x >> 20);
    }
    size_t n = cobs_encode(raw, sizeof raw, one, sizeof one);
    CHECK(n > 0);
    for (size_t piece = 1; piece < 300; piece += 13) {
        cobs_encoder_t e;
        cobs_encoder_init(&e, streamed, sizeof streamed);
        for (size_t at = 0; at < sizeof raw; at += piece) {
            size_t len = sizeof raw - at < piece ? sizeof raw - at : piece;
            cobs_encoder_put(&e, raw + at, len);
        }
        CHECK_EQ(cobs_encoder_finish(&e), n);
        CHECK(memcmp(one, streamed, n) == 0);
    }
}
