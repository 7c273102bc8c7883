/* Drives app.c on the fake hardware for the native tests: boots it, sends commands as a host would,
 * and reads back the frames it wrote to a link with the firmware's own decoder. */
#ifndef CRABWATT_APP_HARNESS_H
#define CRABWATT_APP_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"

typedef struct {
    uint8_t type;
    uint32_t seq;
    uint8_t body[CW_MAX_FRAME_BYTES];
    size_t body_len;
} sent_frame_t;

#define MAX_SENT 4096

extern app_t app;
/* The frames the last take_frames() found. */
extern sent_frame_t sent[MAX_SENT];
/* Per link, how far take_frames() has read what the firmware wrote. */
extern size_t read_pos[HAL_LINK_COUNT];

/* Power-on: the fake's reset state, then app_init(). */
void boot(void);
/* Frames written to the link since the last call; every one must decode intact. */
size_t take_frames(int link);
void send_command(int link, uint8_t type, uint32_t seq, const void *body, size_t len);
/* Polls until the firmware has handled everything the host sent on the link (it takes a bounded
 * number of bytes per poll), then once more. */
void poll_until_heard(int link);
struct cw_ack ack_of(const sent_frame_t *f);
/* Runs one command on the UART to completion and returns its ack; *before* gets the frames sent ahead
 * of it (the answer of cmd_identify/cmd_status; a periodic status may follow the ack). */
struct cw_ack command(uint8_t type, uint32_t seq, const void *body, size_t len, size_t *before);

#endif
