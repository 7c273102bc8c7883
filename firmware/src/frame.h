/* Frames on the wire (docs/protocol.md, server/protocol/definition.ts):
 *     COBS( header ‖ body ‖ crc32c(header ‖ body) ) ‖ 0x00
 *     header = version u8, type u8, seq u32 (little-endian)
 * Hardware-independent: compiled for the device and natively for the tests. */
#ifndef CRABWATT_FRAME_H
#define CRABWATT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "crabwatt_protocol.h"
#include "cobs.h"

/* Largest frame on the wire: the stuffed maximum plus the delimiter. */
#define FRAME_MAX_WIRE_BYTES (COBS_MAX_ENCODED_BYTES(CW_MAX_FRAME_BYTES) + 1u)

/* Encodes one frame, delimiter included, into out. The body is body_len bytes followed by tail_len
 * bytes of tail records (either may be empty). Returns the bytes written, or 0 when the frame would
 * exceed CW_MAX_FRAME_BYTES or out_cap. */
size_t frame_encode(uint8_t type, uint32_t seq, const void *body, size_t body_len, const void *tail,
                    size_t tail_len, uint8_t *out, size_t out_cap);

/* A decoded frame, pointing into the caller's buffer. */
typedef struct {
    uint8_t type;
    uint32_t seq;
    const uint8_t *body;
    size_t body_len;
} frame_view_t;

typedef enum {
    FRAME_OK = 0,
    FRAME_ERR_COBS,    /* stuffing broken, or longer than any frame */
    FRAME_ERR_SHORT,   /* fewer bytes than a header and a CRC */
    FRAME_ERR_CRC,     /* CRC mismatch: nothing in it can be trusted, not even seq */
    FRAME_ERR_VERSION, /* intact, but another protocol version */
} frame_status_t;

/* Decodes one delimiter-stripped chunk in place (chunk is overwritten) and checks length, CRC and
 * version. On FRAME_OK and FRAME_ERR_VERSION, *view describes the frame. */
frame_status_t frame_decode(uint8_t *chunk, size_t len, frame_view_t *view);

/* Collects received bytes into delimiter-separated chunks. A chunk longer than the buffer is
 * discarded up to its delimiter and counted, so garbage cannot wedge the receiver. */
typedef struct {
    uint8_t buf[COBS_MAX_ENCODED_BYTES(CW_MAX_COMMAND_FRAME_BYTES)];
    size_t len;
    int discarding;
    uint32_t oversize; /* chunks thrown away for being too long */
} frame_rx_t;

void frame_rx_init(frame_rx_t *rx);

/* Feeds one byte. Returns the length of a complete chunk now in rx->buf (the caller uses it before
 * the next call), or 0 when no chunk is complete. Empty chunks (two delimiters in a row, the usual
 * way to flush a line) are not reported. */
size_t frame_rx_push(frame_rx_t *rx, uint8_t byte);

#endif
