#include "links.h"

#include <string.h>

/* Bytes the pump writes between two looks at the UART's receive FIFO: ~1 500 cycles, 10 bytes' time
 * at 3 Mbaud. */
#define LINKS_PUMP_BYTES_PER_HEAR 64u

static bool usable(const links_t *l, int link) { return hal_link_up(link) && !l->stalled[link]; }

static int default_link(const links_t *l) { return usable(l, HAL_LINK_USB) ? HAL_LINK_USB : HAL_LINK_UART; }

void links_init(links_t *l)
{
    memset(l, 0, sizeof *l);
    ring_init(&l->tx, l->tx_buf, sizeof l->tx_buf);
    ring_init(&l->uart_rx, l->uart_rx_buf, sizeof l->uart_rx_buf);
    l->current = default_link(l);
    l->pump_link = l->current;
    l->pump_progress_ms = hal_uptime_ms();
}

void links_choose(links_t *l)
{
    if (l->chosen && !usable(l, l->current)) {
        l->chosen = false;
    }
    if (!l->chosen) {
        l->current = default_link(l);
    }
}

void links_heard_from(links_t *l, int link)
{
    l->current = link;
    l->chosen = true;
}

void links_hear(links_t *l)
{
    /* When the ring is full the bytes stay in the FIFO, whose overruns the status frame reports. */
    while (ring_free(&l->uart_rx) > 0) {
        int byte = hal_link_rx(HAL_LINK_UART);
        if (byte < 0) {
            return;
        }
        ring_push(&l->uart_rx, (uint8_t)byte);
    }
}

int links_rx(links_t *l, int link)
{
    if (link != HAL_LINK_UART) {
        return hal_link_rx(link);
    }
    if (ring_used(&l->uart_rx) == 0) {
        return -1;
    }
    uint8_t byte = ring_peek(&l->uart_rx);
    ring_pop(&l->uart_rx);
    return byte;
}

/* A stalled link that takes bytes again (its host reads again) is usable again, after the delimiter
 * that ends the frame abandoned on it: the host then loses that frame only, not the next one too. */
static void revive(links_t *l)
{
    for (int link = 0; link < HAL_LINK_COUNT; link++) {
        if (hal_link_tx_free(link) == 0) {
            continue;
        }
        if (l->delimiter_owed[link]) {
            hal_link_tx(link, 0);
            l->delimiter_owed[link] = false;
        }
        l->stalled[link] = false;
    }
}

/* Drops the rest of the frame being pumped: frames enter the ring whole, so it runs to a delimiter. */
static void abandon_frame(links_t *l)
{
    while (ring_used(&l->tx) > 0) {
        uint8_t byte = ring_peek(&l->tx);
        ring_pop(&l->tx);
        if (byte == 0) {
            break;
        }
    }
    l->delimiter_owed[l->pump_link] = true;
    l->pump_mid_frame = false;
    l->frames_torn++;
}

void links_pump(links_t *l)
{
    uint32_t now_ms = hal_uptime_ms();
    links_hear(l);
    revive(l);
    /* A change of link waits for a frame boundary, so neither host sees a torn frame, unless the link
     * the frame is on has stalled or gone: then waiting could take forever. */
    if (l->pump_link != l->current) {
        if (l->pump_mid_frame && !usable(l, l->pump_link)) {
            abandon_frame(l);
        }
        if (!l->pump_mid_frame) {
            l->pump_link = l->current;
            l->pump_progress_ms = now_ms;
        }
    }
    size_t room = l->delimiter_owed[l->pump_link] ? 0 : hal_link_tx_free(l->pump_link);
    if (room == 0 && ring_used(&l->tx) > 0) {
        if (!l->stalled[l->pump_link] && now_ms - l->pump_progress_ms >= LINKS_STALL_MS) {
            l->stalled[l->pump_link] = true;
            l->stalls++;
        }
        return;
    }
    l->pump_progress_ms = now_ms;
    for (unsigned n = 1; room > 0 && ring_used(&l->tx) > 0; n++) {
        uint8_t byte = ring_peek(&l->tx);
        ring_pop(&l->tx);
        hal_link_tx(l->pump_link, byte);
        room--;
        l->pump_mid_frame = byte != 0;
        if (byte == 0 && l->pump_link != l->current) {
            break;
        }
        if (n % LINKS_PUMP_BYTES_PER_HEAR == 0) {
            links_hear(l);
        }
    }
}
