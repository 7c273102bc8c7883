#include "cobs.h"

void cobs_encoder_init(cobs_encoder_t *e, uint8_t *dst, size_t cap)
{
    e->dst = dst;
    e->cap = cap;
    e->code_at = 0;
    e->out = 1;
    e->code = 1;
    e->overflow = cap == 0;
}

/* Ends the current run at the code byte it reserved and reserves the next run's code byte. */
static void close_run(cobs_encoder_t *e)
{
    e->dst[e->code_at] = e->code;
    e->code_at = e->out++;
    e->code = 1;
    if (e->out > e->cap) {
        e->overflow = true;
    }
}

void cobs_encoder_put(cobs_encoder_t *e, const uint8_t *src, size_t len)
{
    for (size_t k = 0; k < len && !e->overflow; k++) {
        if (src[k] == 0) {
            close_run(e);
            continue;
        }
        if (e->out >= e->cap) {
            e->overflow = true;
            return;
        }
        e->dst[e->out++] = src[k];
        /* A full run of 254 non-zero bytes ends without an implied zero and the next run starts
         * here, even when the input ends on the run's last byte: that trailing 0x01 is the encoding
         * of the paper and of server/protocol/cobs.ts, and the two sides must produce identical
         * bytes. */
        if (++e->code == 0xFF) {
            close_run(e);
        }
    }
}

size_t cobs_encoder_finish(cobs_encoder_t *e)
{
    if (e->overflow) {
        return 0;
    }
    e->dst[e->code_at] = e->code;
    return e->out;
}

size_t cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t dst_cap)
{
    cobs_encoder_t e;
    cobs_encoder_init(&e, dst, dst_cap);
    cobs_encoder_put(&e, src, len);
    return cobs_encoder_finish(&e);
}

long cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t dst_cap)
{
    size_t in = 0;
    size_t out = 0;
    while (in < len) {
        uint8_t code = src[in++];
        if (code == 0 || in + (size_t)code - 1 > len) {
            return -1;
        }
        for (uint8_t k = 1; k < code; k++) {
            uint8_t b = src[in++];
            if (b == 0 || out >= dst_cap) {
                return -1;
            }
            dst[out++] = b;
        }
        /* Every run except a full one (0xFF) and the last is followed by an implied zero. */
        if (code != 0xFF && in < len) {
            if (out >= dst_cap) {
                return -1;
            }
            dst[out++] = 0;
        }
    }
    return (long)out;
}
