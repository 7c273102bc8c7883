/* What the application needs from the hardware. app.c calls these and nothing else, so it builds
 * unchanged for the SoC (hal_soc.c, over firmware/include/crabwatt_csr.h) and natively against the
 * scriptable fake in firmware/test/hal_fake.c. Every function returns promptly: none waits for the
 * host, so nothing the host does (or fails to do) can stall the loop that drains the DSP. */
#ifndef CRABWATT_HAL_H
#define CRABWATT_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Brings the peripherals to a known state (link speeds and the like); first call after reset. */
void hal_init(void);

/* --- time and health --- */
uint32_t hal_uptime_ms(void);
void hal_watchdog_start(uint32_t timeout_ms);
void hal_watchdog_kick(void);
uint16_t hal_watchdog_resets(void);   /* since power-on */
uint32_t hal_samples_dropped(void);   /* ADC samples lost before the DSP */
uint32_t hal_adc_errors(void);        /* ADC frames with a bad leading-zero pattern */

/* --- the ADC capture point (docs/soc.md, ADC block): set by the bring-up scan --- */
void hal_adc_read_delay_set(uint8_t read_delay);
uint8_t hal_adc_read_delay(void);
bool hal_adc_read_settled(void);      /* the read clock's phase has reached READ_DELAY's */

/* --- identity --- */
typedef struct {
    uint64_t device_id;
    uint32_t gateware_version;
    uint32_t sample_rate_num;
    uint32_t sample_rate_den;
    uint16_t capture_depth;
    uint8_t board;
    uint8_t adc_part;
} hal_identity_t;

void hal_identity(hal_identity_t *id);
/* The USB serial number (iSerialNumber); the device attaches to the bus once it is set. Only the
 * first call after power-on counts. */
void hal_usb_serial_number(uint64_t serial);

/* --- links: the Feather UART and the USB CDC-ACM serial port --- */
enum { HAL_LINK_UART = 0, HAL_LINK_USB = 1, HAL_LINK_COUNT = 2 };

int hal_link_rx(int link);            /* next received byte, or -1 */
size_t hal_link_tx_free(int link);    /* bytes hal_link_tx() accepts right now */
void hal_link_tx(int link, uint8_t byte);
bool hal_link_up(int link);           /* the UART always is; USB once the host has configured it */
uint16_t hal_link_rx_overruns(int link); /* bytes dropped at a full receive FIFO (saturates; USB never drops) */

/* --- DSP configuration (docs/dsp.md) --- */
typedef struct {
    uint8_t mode;
    uint16_t cycles;
    uint32_t fixed_samples;
    uint32_t max_samples;
    uint16_t zc_hysteresis;
    int16_t v_offset;
    int16_t i_offset;
    uint16_t v_gain;
    uint16_t i_gain;
    int32_t phase;
} hal_dsp_config_t;

/* Reads the staging registers: the newest configuration, committed or not. */
void hal_dsp_get_config(hal_dsp_config_t *cfg);
/* A commit has not reached its sample boundary yet (one or several: the DSP counts them). */
bool hal_dsp_commit_pending(void);
/* Stages cfg whole and commits it: it takes effect at the next sample boundary. */
void hal_dsp_apply(const hal_dsp_config_t *cfg);
/* Commits that have reached their boundary: the config_seq new windows carry. */
uint16_t hal_dsp_config_seq(void);

/* --- DSP result FIFO: records of 32-bit words, written whole by the gateware --- */
size_t hal_result_level(void);        /* words waiting */
uint32_t hal_result_peek(void);       /* oldest word (only when level > 0) */
void hal_result_pop(void);
uint32_t hal_result_overflows(void);  /* records the DSP dropped because the FIFO was full */

/* --- decimated waveform FIFO (docs/dsp.md, Decimated waveform): stream samples (v, i in q, j) --- */
size_t hal_waveform_level(void);      /* samples waiting */
/* The oldest sample (only when level > 0): v, i and bits 25..0 of its stream index j. */
void hal_waveform_peek(int32_t *v, int32_t *i, uint32_t *j_low);
void hal_waveform_pop(void);
uint64_t hal_waveform_count(void);    /* stream samples produced so far, kept or dropped (48 bits) */
uint32_t hal_waveform_drops(void);    /* samples dropped because the FIFO was full (saturates) */

/* --- raw capture buffer --- */
typedef struct {
    uint64_t first_index;   /* sample index of the oldest captured pair */
    uint64_t trigger_index;
    uint16_t config_seq;
} hal_capture_info_t;

/* What a capture records (docs/protocol.md "Captures"); pairs and pretrigger count recorded pairs. */
typedef struct {
    uint16_t pairs;         /* 1..capture_depth */
    uint16_t pretrigger;    /* < pairs */
    uint16_t decimation;    /* D: one pair every D samples, 1..65535 */
    uint8_t trigger;        /* CW_CAPTURE_TRIGGER_* */
    int16_t level;          /* ADC LSB */
    uint16_t hysteresis;    /* ADC LSB */
} hal_capture_settings_t;

void hal_capture_arm(const hal_capture_settings_t *s);
bool hal_capture_done(hal_capture_info_t *info); /* fills info when done */
/* Reads count pairs from index first (0 = oldest) as v, i, v, i, ... */
void hal_capture_read(uint16_t first, uint16_t count, int16_t *pairs);

/* --- configuration flash: SPI one byte at a time (firmware/src/flash.c speaks its commands) --- */
void hal_flash_select(bool selected);
uint8_t hal_flash_transfer(uint8_t byte); /* the byte that came back; takes the byte's 8 SPI clocks */

/* --- boot --- */
uint32_t hal_boot_entropy(void);      /* whatever varies from one reset to the next */
/* PROGRAMN low: the FPGA reloads from flash (foboot). On a board it does not return. */
void hal_reboot(void);

#endif
