/* A scriptable stand-in for the hardware behind hal.h, for the native tests of app.c. Tests set its
 * fields, call app_poll(), and read what the firmware did. */
#ifndef CRABWATT_HAL_FAKE_H
#define CRABWATT_HAL_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flash_model.h"
#include "hal.h"

#define FAKE_LINK_BYTES (1u << 20)
#define FAKE_RESULT_WORDS 4096u
#define FAKE_CAPTURE_DEPTH 4096u
/* 1 MiB, the smaller flash size the map allows for: the user area ends the first MiB. */
#define FAKE_FLASH_BYTES (1u << 20)
#define FAKE_FLASH_UNIQUE_ID 0xD5E3A1B2C3D4E5F6ull

typedef struct {
    uint8_t rx[4096];
    size_t rx_len, rx_pos;
    uint8_t tx[FAKE_LINK_BYTES];
    size_t tx_len;
    size_t tx_free; /* what hal_link_tx_free() reports: the test decides how fast the host reads */
    /* Received bytes stay out of sight until this many result words have been popped in all, as if
     * they came in while the firmware was forwarding windows (0: at once). */
    size_t rx_after_result_pops;
    /* 0: every byte the host sent is readable at once. Otherwise the link is a UART line: the bytes
     * the host sent (rx) enter a receive FIFO of this many bytes only as time passes, that is as the
     * firmware works (fake_line_advance, and line_bytes_per_commit each time it commits a
     * configuration); a byte that finds the FIFO full is dropped and counted in rx_overruns. */
    size_t fifo_bytes;
    size_t line_bytes_per_commit;
    uint8_t fifo[256];
    size_t fifo_head, fifo_tail; /* free-running */
    uint16_t rx_overruns;
} fake_link_t;

typedef struct {
    uint32_t uptime_ms;
    uint32_t watchdog_timeout_ms;
    uint32_t watchdog_kicks;
    uint16_t watchdog_resets;
    uint32_t samples_dropped, adc_errors;
    uint8_t adc_read_delay;  /* ADC.READ_DELAY */
    bool adc_read_settled;   /* ADC.STATUS.SETTLED */
    hal_identity_t identity;

    fake_link_t link[HAL_LINK_COUNT];
    bool usb_up;

    /* As the DSP does (hdl/crabwatt/dsp/power.py): `dsp` is the staging registers, a commit
     * snapshots them into `committed` and waits for fake_dsp_boundary(), which applies every waiting
     * commit at once (the last one's values win) and counts them all in config_seq. */
    hal_dsp_config_t dsp;
    hal_dsp_config_t committed, active;
    uint16_t commits_waiting;
    uint16_t config_seq; /* commits applied */
    uint32_t commits;    /* COMMIT writes since fake_reset() */

    uint32_t result[FAKE_RESULT_WORDS];
    size_t result_head, result_tail; /* free-running */
    uint32_t result_overflows;

    /* The waveform FIFO as the gateware keeps it (hdl/crabwatt/soc/waveform.py): 256 samples, a
     * sample arriving at a full FIFO is dropped and counted, `count` counts every sample produced. */
    struct {
        int32_t v[256], i[256];
        uint64_t j[256];
        size_t head, tail; /* free-running */
        uint64_t count;
        uint32_t drops;
    } wave;

    struct {
        uint32_t arms;
        hal_capture_settings_t settings; /* of the last arm */
        bool done;
        hal_capture_info_t info;
        int16_t data[2 * FAKE_CAPTURE_DEPTH];
    } capture;

    uint32_t entropy;

    /* The configuration flash; busy time passes with uptime_ms. */
    flash_model_t flash;
    uint32_t flash_clock_ms;
    uint32_t reboots; /* hal_reboot() calls */
    uint32_t flash_commands; /* chip selections */
    uint64_t usb_serial;
    uint32_t usb_serial_sets;
} fake_hal_t;

extern fake_hal_t fake;

/* Power-on state: reset values of docs/dsp.md, links empty and fast, a blank flash. */
void fake_reset(void);
/* The same, but the flash keeps what was written to it (a reboot or power cycle). */
void fake_reset_keeping_flash(void);
/* Queues bytes as if a host had sent them on a link. */
void fake_link_receive(int link, const uint8_t *data, size_t len);
/* A link with fifo_bytes set: the next n bytes the host sent arrive in the receive FIFO. */
void fake_line_advance(int link, size_t n);
/* Bytes the host sent that the firmware has not read yet (on the line or in the FIFO). */
size_t fake_link_unread(int link);
/* Appends words to the result FIFO as the gateware would. */
void fake_result_push(const uint32_t *words, size_t count);
size_t fake_result_level(void);
/* The decimator produces stream sample j = fake.wave.count (kept if the FIFO has room). */
void fake_waveform_produce(int32_t v, int32_t i);
/* A sample boundary: the waiting commits take effect. */
void fake_dsp_boundary(void);

#endif
