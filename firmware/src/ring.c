#include "ring.h"

#include <string.h>

void ring_init(ring_t *r, uint8_t *storage, size_t capacity)
{
    r->buf = storage;
    r->mask = (uint32_t)capacity - 1u;
    r->head = 0;
    r->tail = 0;
}

bool ring_put(ring_t *r, const uint8_t *data, size_t len)
{
    if (len > ring_free(r)) {
        return false;
    }
    size_t at = r->head & r->mask;
    size_t first = r->mask + 1u - at;
    if (first > len) {
        first = len;
    }
    memcpy(r->buf + at, data, first);
    memcpy(r->buf, data + first, len - first);
    r->head += (uint32_t)len;
    return true;
}
