/* The two links to the host, the Feather UART and the USB CDC-ACM port: where frames go, the pump that
 * moves whole frames from the transmit ring into a link's FIFO, the UART's receive ring, and what
 * happens when a link stops taking bytes. Hardware-independent (hal.h); compiled for the device and
 * natively for the tests. */
#ifndef CRABWATT_LINKS_H
#define CRABWATT_LINKS_H

#include <stdbool.h>
#include <stdint.h>

#include "crabwatt_protocol.h"
#include "hal.h"
#include "ring.h"

/* The transmit ring, sized by the protocol definition (server/protocol/definition.ts TX_RING), which the
 * simulated device models too. */
#define LINKS_TX_RING_BYTES CW_TX_RING_BYTES
/* The UART's receive FIFO holds 64 bytes (0.21 ms at 3 Mbaud) and drops what arrives while it is full,
 * and hearing and answering a command costs about as long as its bytes take on the line. So the FIFO
 * is moved into this ring wherever the loop works for longer than a few bytes' time, and commands are
 * taken from the ring: a burst of up to this many bytes plus the FIFO's is heard whole whatever the
 * loop does meanwhile. USB needs none: its FIFO makes the host wait. */
#define LINKS_UART_RX_RING_BYTES 1024u
/* A link that takes no byte for this long while frames wait for it is stalled (port closed, host
 * suspended, cable pulled without USB noticing): frames go to the other link, and a frame the stalled
 * link was in the middle of is abandoned. Far longer than any reading host pauses. */
#define LINKS_STALL_MS 500u

_Static_assert((LINKS_TX_RING_BYTES & (LINKS_TX_RING_BYTES - 1u)) == 0 &&
                   (LINKS_UART_RX_RING_BYTES & (LINKS_UART_RX_RING_BYTES - 1u)) == 0,
               "ring sizes are powers of two");

typedef struct {
    ring_t tx;               /* whole encoded frames waiting for the pump */
    ring_t uart_rx;          /* bytes heard on the UART, not yet handled */
    int current;             /* where frames go */
    bool chosen;             /* a host spoke on `current` and it is still usable */
    int pump_link;           /* the link the pump is writing the current frame to */
    bool pump_mid_frame;
    uint32_t pump_progress_ms; /* when pump_link last took a byte or had none waiting for it */
    bool stalled[HAL_LINK_COUNT];        /* took no byte for LINKS_STALL_MS; cleared when it takes one */
    bool delimiter_owed[HAL_LINK_COUNT]; /* a frame was abandoned on it: a 0x00 goes before anything else */
    uint32_t stalls;         /* links found stalled */
    uint32_t frames_torn;    /* frames abandoned part-way on a stalled or vanished link */
    uint8_t tx_buf[LINKS_TX_RING_BYTES];
    uint8_t uart_rx_buf[LINKS_UART_RX_RING_BYTES];
} links_t;

void links_init(links_t *l);

/* Once per loop: frames go to the link a host last spoke on while it stays usable (up, not stalled);
 * before any host has spoken, and after that link went away or stalled, to USB when it is usable, else
 * to the UART. */
void links_choose(links_t *l);

/* A valid command came from `link`: answers and everything after go there. */
void links_heard_from(links_t *l, int link);

/* Moves what the UART's receive FIFO holds into RAM. A few cycles a byte: call it wherever the loop
 * works for longer than a few bytes' time on the line. */
void links_hear(links_t *l);

/* The next received byte of a link, or -1. */
int links_rx(links_t *l, int link);

/* Moves frames from the transmit ring into the current link's FIFO, as much as it takes. */
void links_pump(links_t *l);

#endif
