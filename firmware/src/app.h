/* The device's behaviour, independent of the hardware (which it reaches through hal.h): drains the
 * DSP result FIFO into window and energy frames, answers host commands with acks, sends raw
 * captures as chunks, reports status once a second. One call of app_poll() does a bounded amount of
 * work and never waits, so the main loop can kick the watchdog at a steady pace. */
#ifndef CRABWATT_APP_H
#define CRABWATT_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "calstore.h"
#include "frame.h"
#include "hal.h"
#include "links.h"
#include "waveform.h"

#define FIRMWARE_VERSION ((0u << 16) | (1u << 8) | 0u) /* major << 16 | minor << 8 | patch */

#define APP_STATUS_PERIOD_MS 1000u
/* Records handled per poll: enough to keep up with 1 kHz windows at any loop rate above ~500 Hz,
 * few enough that commands and the link pump are never starved for long. */
#define APP_RECORDS_PER_POLL 4u
/* Ring space capture chunks leave free, so windows, energy and acks keep flowing during a capture
 * (the protocol definition's TX_RESERVE, which the simulated device holds to too). */
#define APP_CAPTURE_RESERVE_BYTES CW_TX_RESERVE_CAPTURE_BYTES
/* A level-triggered capture whose trigger has not come this long after its pretrigger filled takes
 * its samples anyway (as the simulated device does), so a level the signal never reaches cannot leave
 * the device BUSY. */
#define APP_CAPTURE_AUTO_TRIGGER_MS 1000u
/* Pairs per capture_chunk frame: the protocol's maximum, so a full capture is as few frames as can be. */
#define APP_CHUNK_PAIRS CW_CAPTURE_CHUNK_PAIRS_MAX_COUNT
/* After cmd_reboot's ack has left the ring, time for the link's FIFO (512 bytes on USB, 256 at
 * 3 Mbaud on the UART: under 1 ms) to send it before PROGRAMN cuts everything off. */
#define APP_REBOOT_DRAIN_MS 20u

typedef struct {
    bool active;        /* armed or still sending */
    bool done;          /* the hardware finished: chunks are being sent */
    bool forced;        /* re-armed as IMMEDIATE after the auto-trigger time */
    uint32_t armed_ms;
    uint32_t auto_trigger_ms; /* after armed_ms: APP_CAPTURE_AUTO_TRIGGER_MS + pretrigger fill time */
    uint16_t id;
    hal_capture_settings_t settings;
    uint16_t next_chunk;
    uint16_t chunk_count;
    hal_capture_info_t info;
} app_capture_t;

typedef struct {
    links_t links;
    frame_rx_t rx[HAL_LINK_COUNT];
    uint32_t seq;       /* seq of the next frame generated (dropped frames use theirs up too) */
    uint32_t boot_id;
    uint64_t device_id; /* the flash's unique ID, or the build's IDENT.DEVICE_ID without a flash */
    calstore_t store;   /* the calibration record in flash */
    bool reboot_pending;  /* cmd_reboot: once the ack and any save are out */
    bool reboot_draining; /* since reboot_ms */
    uint32_t reboot_ms;
    uint32_t frames_dropped;
    uint32_t rx_errors; /* command chunks rejected before they could be answered */
    uint32_t records_skipped; /* result FIFO words of unknown or malformed records */
    uint32_t last_status_ms;
    uint16_t config_seq_committed; /* config_seq of the last commit made (see config_seq_newest) */
    uint16_t next_capture_id;
    app_capture_t capture;
    waveform_t waveform;
    uint8_t scratch[FRAME_MAX_WIRE_BYTES];
    int16_t pairs[2 * APP_CHUNK_PAIRS];
} app_t;

/* Sets up the state, reads the flash's unique ID and calibration record (applied at once), and
 * queues the boot identify and status frames. */
void app_init(app_t *app, uint32_t boot_id);

/* One round of work. */
void app_poll(app_t *app);

#endif
