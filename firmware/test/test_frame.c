/* The streaming receiver (frame_rx_push) against the whole-chunk decoder (frame_decode): for valid
 * frames of every length, damaged ones and garbage, byte by byte, both must reach the same verdict
 * and the same header; plus the limits the receiver enforces. */
#include <string.h>

#include "check.h"
#include "crc32c.h"
#include "frame.h"

static uint32_t rng_state = 1;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Feeds chunk ‖ 0x00 through a receiver; returns its verdict for the chunk. */
static int stream(frame_rx_t *rx, const uint8_t *chunk, size_t len, frame_view_t *view)
{
    for (size_t k = 0; k < len; k++) {
        if (frame_rx_push(rx, chunk[k], view) != -1) return -2; /* no verdict before the delimiter */
    }
    return frame_rx_push(rx, 0, view);
}

static void same_verdict(frame_rx_t *rx, const uint8_t *chunk, size_t len)
{
    static uint8_t copy[4096];
    frame_view_t batch_view, stream_view;
    memcpy(copy, chunk, len);
    int batch = len > CW_MAX_ENCODED_FRAME_BYTES ? FRAME_ERR_OVERSIZE : (int)frame_decode(copy, len, &batch_view);
    int streamed = stream(rx, chunk, len, &stream_view);
    if (len == 0) {
        CHECK_EQ(streamed, -1);
        return;
    }
    CHECK_EQ(streamed, batch);
    if (batch == FRAME_OK || batch == FRAME_ERR_VERSION) {
        CHECK_EQ(stream_view.type, batch_view.type);
        CHECK_EQ(stream_view.seq, batch_view.seq);
        CHECK_EQ(stream_view.body_len, batch_view.body_len);
        size_t kept = batch_view.body_len < FRAME_RX_KEEP_BYTES - CW_HEADER_BYTES ? batch_view.body_len
                                                                                : FRAME_RX_KEEP_BYTES - CW_HEADER_BYTES;
        CHECK(memcmp(stream_view.body, batch_view.body, kept) == 0);
    }
}

TEST(frame_rx_agrees_with_frame_decode_on_valid_and_damaged_frames)
{
    frame_rx_t rx;
    frame_rx_init(&rx);
    static uint8_t body[CW_MAX_FRAME_BYTES], wire[FRAME_MAX_WIRE_BYTES];
    for (int trial = 0; trial < 3000; trial++) {
        size_t len = rnd() % (CW_MAX_FRAME_BYTES - CW_HEADER_BYTES - CW_CRC_BYTES + 1);
        unsigned zeros = rnd() % 4; /* from zero-rich to zero-free bodies */
        for (size_t k = 0; k < len; k++) body[k] = (rnd() % 4 < zeros) ? (uint8_t)(rnd() | 1u) : 0;
        size_t n = frame_encode((uint8_t)rnd(), rnd(), body, len, NULL, 0, wire, sizeof wire);
        CHECK(n > 0);
        same_verdict(&rx, wire, n - 1);
        /* Truncated. */
        same_verdict(&rx, wire, rnd() % (n - 1));
        /* With one bit flipped somewhere (a flip to 0x00 would split it in two: not this test). */
        size_t at = rnd() % (n - 1);
        wire[at] ^= (uint8_t)(1u << (rnd() % 8));
        if (wire[at] != 0) same_verdict(&rx, wire, n - 1);
    }
}

TEST(frame_rx_agrees_on_garbage_and_keeps_no_more_than_it_may)
{
    frame_rx_t rx;
    frame_rx_init(&rx);
    static uint8_t garbage[1500];
    for (int trial = 0; trial < 3000; trial++) {
        size_t len = rnd() % (trial % 10 == 0 ? sizeof garbage : 40);
        for (size_t k = 0; k < len; k++) garbage[k] = (uint8_t)(rnd() % 255 + 1);
        same_verdict(&rx, garbage, len);
    }
    CHECK(rx.oversize > 0);
}

TEST(frame_rx_versions_short_frames_and_empty_chunks)
{
    frame_rx_t rx;
    frame_rx_init(&rx);
    frame_view_t view;
    uint8_t raw[CW_HEADER_BYTES + 3 + CW_CRC_BYTES] = {CW_PROTOCOL_VERSION, 0x85, 0x78, 0x56, 0x34, 0x12, 1, 0, 2};
    uint32_t crc = crc32c(raw, sizeof raw - 4);
    memcpy(raw + sizeof raw - 4, &crc, 4);
    uint8_t wire[32];
    size_t n = cobs_encode(raw, sizeof raw, wire, sizeof wire);
    CHECK_EQ(frame_rx_push(&rx, 0, &view), -1);
    CHECK_EQ(frame_rx_push(&rx, 0, &view), -1);
    CHECK_EQ(stream(&rx, wire, n, &view), FRAME_OK);
    CHECK_EQ(view.type, 0x85);
    CHECK_EQ(view.seq, 0x12345678u);
    CHECK_EQ(view.body_len, 3);
    CHECK(view.body[0] == 1 && view.body[1] == 0 && view.body[2] == 2);
    raw[0] = CW_PROTOCOL_VERSION + 1;
    crc = crc32c(raw, sizeof raw - 4);
    memcpy(raw + sizeof raw - 4, &crc, 4);
    n = cobs_encode(raw, sizeof raw, wire, sizeof wire);
    CHECK_EQ(stream(&rx, wire, n, &view), FRAME_ERR_VERSION);
    n = cobs_encode(raw, CW_HEADER_BYTES + CW_CRC_BYTES - 1, wire, sizeof wire);
    CHECK_EQ(stream(&rx, wire, n, &view), FRAME_ERR_SHORT);
    /* A code byte that promises more than arrives. */
    CHECK_EQ(stream(&rx, (const uint8_t[]){0x09, 0x11, 0x22}, 3, &view), FRAME_ERR_COBS);
}
