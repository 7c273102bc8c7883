/* A byte ring between a producer and a consumer in the same loop: the transmit ring between frame
 * producers and the link pump, and the UART's receive ring between the FIFO and the command receiver.
 * Producers put whole frames or nothing (ring_put refuses what does not fit), so a slow or absent
 * host costs dropped frames, never a stalled main loop and never a torn frame on the wire. */
#ifndef CRABWATT_RING_H
#define CRABWATT_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *buf;
    uint32_t mask; /* capacity - 1: the capacity is a power of two, so indices wrap with a mask */
    uint32_t head; /* free-running write count */
    uint32_t tail; /* free-running read count */
} ring_t;

/* storage holds capacity bytes, a power of two. */
void ring_init(ring_t *r, uint8_t *storage, size_t capacity);

static inline size_t ring_used(const ring_t *r) { return (size_t)(r->head - r->tail); }
static inline size_t ring_free(const ring_t *r) { return r->mask + 1u - ring_used(r); }

/* Appends all len bytes, or none when they do not fit; returns whether it did. */
bool ring_put(ring_t *r, const uint8_t *data, size_t len);

/* Appends one byte; only valid when ring_free() > 0. */
static inline void ring_push(ring_t *r, uint8_t byte) { r->buf[r->head++ & r->mask] = byte; }

/* The oldest byte; only valid when ring_used() > 0. */
static inline uint8_t ring_peek(const ring_t *r) { return r->buf[r->tail & r->mask]; }
static inline void ring_pop(ring_t *r) { r->tail++; }

#endif
