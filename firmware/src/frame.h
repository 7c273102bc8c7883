/* Frames on the wire (docs/protocol.md, server/protocol/definition.ts):
 *     COBS( header ‖ body ‖ crc32c(header ‖ body) ) ‖ 0x00
 *     header = version u8, type u8, seq u32 (little-endian)
 * Hardware-independent: compiled for the device and natively for the tests. */
#ifndef CRABWATT_FRAME_H
#define CRABWATT_FRAME_H

#include <stdbool.h>
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

/* A decoded frame. body points into the decoder's buffer; body_len is the body's true length. */
typedef struct {
    uint8_t type;
    uint32_t seq;
    const uint8_t *body;
    size_t body_len;
} frame_view_t;

typedef enum {
    FRAME_OK = 0,
    FRAME_ERR_COBS,     /* stuffing broken (a code byte runs past the chunk's end) */
    FRAME_ERR_SHORT,    /* fewer bytes than a header and a CRC */
    FRAME_ERR_CRC,      /* CRC mismatch: nothing in it can be trusted, not even seq */
    FRAME_ERR_VERSION,  /* intact, but another protocol version */
    FRAME_ERR_OVERSIZE, /* more bytes between delimiters than any frame has */
} frame_status_t;

/* Decodes one delimiter-stripped chunk held whole in memory, in place (chunk is overwritten), and
 * checks length, CRC and version. On FRAME_OK and FRAME_ERR_VERSION, *view describes the frame.
 * The reference for frame_rx_push(), which the firmware uses. */
frame_status_t frame_decode(uint8_t *chunk, size_t len, frame_view_t *view);

/* Bytes of a received frame the receiver keeps: the header and the longest command body. */
#define FRAME_RX_KEEP_BYTES (CW_MAX_COMMAND_FRAME_BYTES - CW_CRC_BYTES)

/* Streaming receiver: un-stuffs and CRC-checks a frame byte by byte as it arrives, keeping only
 * its first FRAME_RX_KEEP_BYTES and its last four bytes. So any intact frame up to the protocol's
 * maximum is recognised and can be answered (a long frame of an unknown type gets its
 * UNKNOWN_COMMAND ack, as docs/protocol.md requires) in ~40 bytes of RAM per link, and no input can
 * make it hold more. */
typedef struct {
    uint8_t head[FRAME_RX_KEEP_BYTES];
    uint8_t last4[4];   /* the last four decoded bytes, a ring indexed by decoded & 3 */
    uint32_t crc;       /* over the decoded bytes except the last four */
    size_t decoded;     /* decoded bytes of the chunk so far */
    size_t encoded;     /* stuffed bytes of the chunk so far */
    uint8_t run_left;   /* data bytes left in the current COBS run */
    bool zero_after_run; /* the current run ends in an implied zero ... */
    bool zero_pending;  /* ... which is emitted only if another run follows */
    uint32_t oversize;  /* chunks longer than any frame, dropped */
} frame_rx_t;

void frame_rx_init(frame_rx_t *rx);

/* Feeds one byte. At a delimiter that ends a non-empty chunk, returns the chunk's status and, for
 * FRAME_OK and FRAME_ERR_VERSION, fills *view (valid until the next call); otherwise returns -1.
 * Two delimiters in a row (the usual way to flush a line) are not a chunk. */
int frame_rx_push(frame_rx_t *rx, uint8_t byte, frame_view_t *view);

#endif
