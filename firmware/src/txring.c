#include "txring.h"

#include <string.h>

_Static_assert((TXRING_BYTES & (TXRING_BYTES - 1u)) == 0, "TXRING_BYTES must be a power of two");

void txring_init(txring_t *r)
{
    r->head = 0;
    r->tail = 0;
}

bool txring_put(txring_t *r, const uint8_t *data, size_t len)
{
    if (len > txring_free(r)) {
        return false;
    }
    size_t at = r->head & (TXRING_BYTES - 1u);
    size_t first = TXRING_BYTES - at;
    if (first > len) {
        first = len;
    }
    memcpy(r->buf + at, data, first);
    memcpy(r->buf, data + first, len - first);
    r->head += (uint32_t)len;
    return true;
}
