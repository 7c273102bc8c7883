/* Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999), as the wire protocol uses it: a frame is
 * COBS(raw) followed by one 0x00 delimiter, so the decoder resynchronises at the next zero after any
 * garbage. These functions handle the stuffing only; the delimiter is the caller's business. */
#ifndef CRABWATT_COBS_H
#define CRABWATT_COBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest encoding of len raw bytes: one code byte per started run of 254, plus the leading code. */
#define COBS_MAX_ENCODED_BYTES(len) ((len) + (len) / 254u + 1u)

/* Streaming encoder, so a frame's header, body, tail and CRC can be stuffed straight from where they
 * are without first being copied into one raw buffer (RAM is 16 KiB). */
typedef struct {
    uint8_t *dst;
    size_t cap;
    size_t out;     /* bytes written or reserved so far */
    size_t code_at; /* where the current run's code byte goes */
    uint8_t code;   /* 1 + bytes in the current run */
    bool overflow;
} cobs_encoder_t;

void cobs_encoder_init(cobs_encoder_t *e, uint8_t *dst, size_t cap);
void cobs_encoder_put(cobs_encoder_t *e, const uint8_t *src, size_t len);
/* Closes the last run. Returns the encoded length, or 0 when dst was too small at any point (a
 * finished encoding is never 0 bytes long, so 0 is unambiguous). */
size_t cobs_encoder_finish(cobs_encoder_t *e);

/* One-shot form of the above (no delimiter). */
size_t cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t dst_cap);

/* Decodes src[0..len) (delimiter already stripped) into dst. Returns the decoded length, or -1 when
 * the input holds a zero byte, a code byte points past the end, or dst_cap is too small.
 * Decoding in place (dst == src) is allowed: the output never overtakes the input. */
long cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t dst_cap);

#endif
