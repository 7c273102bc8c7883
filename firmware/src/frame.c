#include "frame.h"

#include <string.h>

#include "crc32c.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "frame bodies are packed little-endian structs: a big-endian target needs byte swaps");

static void put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t frame_encode(uint8_t type, uint32_t seq, const void *body, size_t body_len, const void *tail,
                    size_t tail_len, uint8_t *out, size_t out_cap)
{
    if (CW_HEADER_BYTES + body_len + tail_len + CW_CRC_BYTES > CW_MAX_FRAME_BYTES || out_cap < 1) {
        return 0;
    }
    uint8_t header[CW_HEADER_BYTES];
    header[0] = CW_PROTOCOL_VERSION;
    header[1] = type;
    put_u32le(header + 2, seq);

    uint32_t crc = crc32c_update(CRC32C_INIT, header, sizeof header);
    crc = crc32c_update(crc, body, body_len);
    crc = crc32c_final(crc32c_update(crc, tail, tail_len));
    uint8_t crc_bytes[CW_CRC_BYTES];
    put_u32le(crc_bytes, crc);

    cobs_encoder_t e;
    cobs_encoder_init(&e, out, out_cap - 1); /* keep room for the delimiter */
    cobs_encoder_put(&e, header, sizeof header);
    cobs_encoder_put(&e, body, body_len);
    cobs_encoder_put(&e, tail, tail_len);
    cobs_encoder_put(&e, crc_bytes, sizeof crc_bytes);
    size_t n = cobs_encoder_finish(&e);
    if (n == 0) {
        return 0;
    }
    out[n] = 0;
    return n + 1;
}

frame_status_t frame_decode(uint8_t *chunk, size_t len, frame_view_t *view)
{
    long n = cobs_decode(chunk, len, chunk, CW_MAX_FRAME_BYTES);
    if (n < 0) {
        return FRAME_ERR_COBS;
    }
    if ((size_t)n < CW_HEADER_BYTES + CW_CRC_BYTES) {
        return FRAME_ERR_SHORT;
    }
    size_t covered = (size_t)n - CW_CRC_BYTES;
    if (crc32c(chunk, covered) != get_u32le(chunk + covered)) {
        return FRAME_ERR_CRC;
    }
    view->type = chunk[1];
    view->seq = get_u32le(chunk + 2);
    view->body = chunk + CW_HEADER_BYTES;
    view->body_len = covered - CW_HEADER_BYTES;
    return chunk[0] == CW_PROTOCOL_VERSION ? FRAME_OK : FRAME_ERR_VERSION;
}

_Static_assert(FRAME_RX_KEEP_BYTES >= CW_HEADER_BYTES, "the receiver must keep at least a header");

static void rx_restart(frame_rx_t *rx)
{
    rx->crc = CRC32C_INIT;
    rx->decoded = 0;
    rx->encoded = 0;
    rx->run_left = 0;
    rx->zero_after_run = false;
    rx->zero_pending = false;
}

void frame_rx_init(frame_rx_t *rx)
{
    rx_restart(rx);
    rx->oversize = 0;
}

/* One decoded byte: the byte four places back leaves the CRC delay line into the CRC. */
static void rx_emit(frame_rx_t *rx, uint8_t byte)
{
    uint8_t *slot = &rx->last4[rx->decoded & 3u];
    if (rx->decoded >= 4) {
        rx->crc = crc32c_update(rx->crc, slot, 1);
    }
    *slot = byte;
    if (rx->decoded < FRAME_RX_KEEP_BYTES) {
        rx->head[rx->decoded] = byte;
    }
    rx->decoded++;
}

static frame_status_t rx_finish(frame_rx_t *rx, frame_view_t *view)
{
    if (rx->encoded > CW_MAX_ENCODED_FRAME_BYTES) {
        rx->oversize++;
        return FRAME_ERR_OVERSIZE;
    }
    if (rx->run_left != 0) {
        return FRAME_ERR_COBS;
    }
    /* The last run's implied zero is not part of the frame (zero_pending is simply dropped). */
    if (rx->decoded < CW_HEADER_BYTES + CW_CRC_BYTES) {
        return FRAME_ERR_SHORT;
    }
    uint8_t crc_bytes[4];
    for (size_t k = 0; k < 4; k++) {
        crc_bytes[k] = rx->last4[(rx->decoded - 4 + k) & 3u];
    }
    if (crc32c_final(rx->crc) != get_u32le(crc_bytes)) {
        return FRAME_ERR_CRC;
    }
    view->type = rx->head[1];
    view->seq = get_u32le(rx->head + 2);
    view->body = rx->head + CW_HEADER_BYTES;
    view->body_len = rx->decoded - CW_HEADER_BYTES - CW_CRC_BYTES;
    return rx->head[0] == CW_PROTOCOL_VERSION ? FRAME_OK : FRAME_ERR_VERSION;
}

int frame_rx_push(frame_rx_t *rx, uint8_t byte, frame_view_t *view)
{
    if (byte == 0) {
        int result = rx->encoded == 0 ? -1 : (int)rx_finish(rx, view);
        rx_restart(rx);
        return result;
    }
    /* Past the longest frame only the count goes on, until the delimiter. */
    if (++rx->encoded > CW_MAX_ENCODED_FRAME_BYTES) {
        return -1;
    }
    if (rx->run_left == 0) {
        /* A code byte: the previous run's implied zero is real now that another run follows. */
        if (rx->zero_pending) {
            rx_emit(rx, 0);
        }
        rx->run_left = (uint8_t)(byte - 1u);
        rx->zero_after_run = byte != 0xFF;
        rx->zero_pending = rx->run_left == 0 && rx->zero_after_run;
        return -1;
    }
    rx_emit(rx, byte);
    if (--rx->run_left == 0) {
        rx->zero_pending = rx->zero_after_run;
    }
    return -1;
}
