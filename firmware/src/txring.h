/* The transmit ring between frame producers and the link. Producers put whole encoded frames or
 * nothing (txring_put refuses what does not fit), so a slow or absent host costs dropped frames,
 * never a stalled main loop and never a torn frame on the wire. The pump drains it a byte at a time
 * into whatever hardware FIFO carries the link. */
#ifndef CRABWATT_TXRING_H
#define CRABWATT_TXRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A power of two, so indices wrap with a mask. 8 KiB holds ~85 window frames (~0.4 s at 200 Hz
 * windows) or seven full capture chunks: enough to ride out a host that stops reading for a moment. */
#define TXRING_BYTES 8192u

typedef struct {
    uint8_t buf[TXRING_BYTES];
    uint32_t head; /* free-running write count */
    uint32_t tail; /* free-running read count */
} txring_t;

void txring_init(txring_t *r);

static inline size_t txring_used(const txring_t *r) { return (size_t)(r->head - r->tail); }
static inline size_t txring_free(const txring_t *r) { return TXRING_BYTES - txring_used(r); }

/* Appends all len bytes, or none when they do not fit; returns whether it did. */
bool txring_put(txring_t *r, const uint8_t *data, size_t len);

/* The oldest byte; only valid when txring_used() > 0. */
static inline uint8_t txring_peek(const txring_t *r) { return r->buf[r->tail & (TXRING_BYTES - 1u)]; }
static inline void txring_pop(txring_t *r) { r->tail++; }

#endif
