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

void cobs_encoder_put(cobs_encoder_t *e, const uint8_t *src, size_t len)
{
    /* The state lives in locals for the loop: stores through dst may alias *e as far as the compiler
     * knows, which would otherwise reload every field for every byte (measured on VexRiscv: this
     * loop is most of the cost of building a frame). */
    uint8_t *dst = e->dst;
    size_t cap = e->cap;
    size_t out = e->out;
    size_t code_at = e->code_at;
    unsigned code = e->code;
    bool overflow = e->overflow;
    for (size_t k = 0; k < len && !overflow; k++) {
        uint8_t byte = src[k];
        if (byte != 0) {
            if (out >= cap) {
                overflow = true;
                break;
            }
            dst[out++] = byte;
            /* A full run of 254 non-zero bytes ends without an implied zero and the next run
             * starts here, even when the input ends on the run's last byte: that trailing 0x01 is
             * the encoding of the paper and of server/protocol/cobs.ts, and the two sides must
             * produce identical bytes. */
            if (++code != 0xFF) {
                continue;
            }
        }
        /* End the current run at the code byte it reserved and reserve the next run's. */
        dst[code_at] = (uint8_t)code;
        code_at = out++;
        code = 1;
        if (out > cap) {
            overflow = true;
        }
    }
    e->out = out;
    e->code_at = code_at;
    e->code = (uint8_t)code;
    e->overflow = overflow;
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
