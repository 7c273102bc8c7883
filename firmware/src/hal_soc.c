/* hal.h on the crabwatt SoC: every register comes from the generated firmware/include/crabwatt_csr.h
 * (docs/soc.md). 32-bit accesses only, as the bus requires. */
#include <stdint.h>

#include "crabwatt_csr.h"
#include "crabwatt_protocol.h"
#include "hal.h"

/* The Feather UART's speed, the host's default (server/device/link.ts): 3 Mbaud divides 48 and
 * 72 MHz exactly and is what FT232R/FT232H and CP2102N cables reach (CH340 stops at 2 Mbaud). At
 * ~300 kB/s it carries ~2 kHz of window+energy frames. */
#define UART_BAUD 3000000u
#define UART_MIN_DIVISOR 4u
/* Pairs the boot-time noise capture takes, and how long it may wait for them. */
#define ENTROPY_PAIRS 64u
#define ENTROPY_WAIT_MS 3u

static inline int16_t reg_i16(uint32_t reg) { return (int16_t)(uint16_t)reg; }

void hal_init(void)
{
    uint32_t clk_hz = CW_IDENT_SYS_CLK_HZ;
    uint32_t divisor = (clk_hz + UART_BAUD / 2u) / UART_BAUD;
    CW_UART_DIVISOR = divisor < UART_MIN_DIVISOR ? UART_MIN_DIVISOR : divisor;
}

uint32_t hal_uptime_ms(void) { return CW_SYS_UPTIME_MS; }

void hal_watchdog_start(uint32_t timeout_ms)
{
    CW_SYS_WDT_TIMEOUT_MS = timeout_ms; /* also counts as a kick */
}

void hal_watchdog_kick(void) { CW_SYS_WDT_KICK = CW_WDT_KICK_KEY; }
uint16_t hal_watchdog_resets(void) { return (uint16_t)CW_SYS_WDT_RESETS; }
uint32_t hal_samples_dropped(void) { return CW_COUNTERS_SAMPLES_DROPPED; }
uint32_t hal_adc_errors(void) { return CW_COUNTERS_ADC_ERRORS; }

void hal_adc_read_delay_set(uint8_t read_delay) { CW_ADC_READ_DELAY = read_delay; }
uint8_t hal_adc_read_delay(void) { return (uint8_t)CW_ADC_READ_DELAY; }
bool hal_adc_read_settled(void) { return (CW_ADC_STATUS & CW_ADC_STATUS_SETTLED_MASK) != 0; }

void hal_identity(hal_identity_t *id)
{
    id->device_id = (uint64_t)CW_IDENT_DEVICE_ID_HI << 32 | CW_IDENT_DEVICE_ID_LO;
    id->gateware_version = CW_IDENT_GATEWARE_VERSION;
    id->sample_rate_num = CW_IDENT_SAMPLE_RATE_NUM;
    id->sample_rate_den = CW_IDENT_SAMPLE_RATE_DEN;
    id->capture_depth = (uint16_t)CW_IDENT_CAPTURE_DEPTH;
    id->board = (uint8_t)CW_IDENT_BOARD;
    id->adc_part = (uint8_t)CW_IDENT_ADC_PART;
}

void hal_usb_serial_number(uint64_t serial)
{
    CW_USB_SERIAL_LO = (uint32_t)serial;
    CW_USB_SERIAL_HI = (uint32_t)(serial >> 32); /* sets it */
}

/* --- links --- */

int hal_link_rx(int link)
{
    uint32_t rx = link == HAL_LINK_USB ? CW_USB_RX : CW_UART_RX;
    if (!(rx & CW_UART_RX_VALID_MASK)) {
        return -1;
    }
    if (link == HAL_LINK_USB) {
        CW_USB_RX_POP = 1u;
    } else {
        CW_UART_RX_POP = 1u;
    }
    return (int)(rx & CW_UART_RX_DATA_MASK);
}

size_t hal_link_tx_free(int link) { return link == HAL_LINK_USB ? CW_USB_TX_FREE : CW_UART_TX_FREE; }

void hal_link_tx(int link, uint8_t byte)
{
    if (link == HAL_LINK_USB) {
        CW_USB_TX = byte;
    } else {
        CW_UART_TX = byte;
    }
}

uint16_t hal_link_rx_overruns(int link)
{
    return (uint16_t)(link == HAL_LINK_USB ? CW_USB_RX_OVERRUNS : CW_UART_RX_OVERRUNS);
}

bool hal_link_up(int link)
{
    return link != HAL_LINK_USB || (CW_USB_STATUS & CW_USB_STATUS_CONFIGURED_MASK) != 0;
}

/* --- DSP --- */

void hal_dsp_get_config(hal_dsp_config_t *cfg)
{
    cfg->mode = (uint8_t)CW_DSP_MODE;
    cfg->cycles = (uint16_t)CW_DSP_CYCLES;
    cfg->fixed_samples = CW_DSP_FIXED_SAMPLES;
    cfg->max_samples = CW_DSP_MAX_SAMPLES;
    cfg->zc_hysteresis = (uint16_t)CW_DSP_ZC_HYSTERESIS;
    cfg->v_offset = reg_i16(CW_DSP_V_OFFSET);
    cfg->i_offset = reg_i16(CW_DSP_I_OFFSET);
    cfg->v_gain = (uint16_t)CW_DSP_V_GAIN;
    cfg->i_gain = (uint16_t)CW_DSP_I_GAIN;
    cfg->phase = (int32_t)CW_DSP_PHASE;
}

bool hal_dsp_commit_pending(void) { return (CW_DSP_STATUS & CW_DSP_STATUS_COMMIT_PENDING_MASK) != 0; }

void hal_dsp_apply(const hal_dsp_config_t *cfg)
{
    /* COMMIT snapshots the staging registers, so writing them while an earlier commit still waits
     * for its boundary leaves that commit's values alone. */
    CW_DSP_MODE = cfg->mode;
    CW_DSP_CYCLES = cfg->cycles;
    CW_DSP_FIXED_SAMPLES = cfg->fixed_samples;
    CW_DSP_MAX_SAMPLES = cfg->max_samples;
    CW_DSP_ZC_HYSTERESIS = cfg->zc_hysteresis;
    CW_DSP_V_OFFSET = (uint32_t)(uint16_t)cfg->v_offset;
    CW_DSP_I_OFFSET = (uint32_t)(uint16_t)cfg->i_offset;
    CW_DSP_V_GAIN = cfg->v_gain;
    CW_DSP_I_GAIN = cfg->i_gain;
    CW_DSP_PHASE = (uint32_t)cfg->phase;
    CW_DSP_COMMIT = 1u;
}

uint16_t hal_dsp_config_seq(void) { return (uint16_t)CW_DSP_CONFIG_SEQ; }

size_t hal_result_level(void) { return CW_RESULT_LEVEL; }
uint32_t hal_result_peek(void) { return CW_RESULT_DATA; }
void hal_result_pop(void) { CW_RESULT_POP = 1u; }
uint32_t hal_result_overflows(void) { return CW_RESULT_OVERFLOWS; }

size_t hal_waveform_level(void) { return CW_WAVEFORM_LEVEL; }
void hal_waveform_peek(int32_t *v, int32_t *i, uint32_t *j_low)
{
    *v = (int32_t)CW_WAVEFORM_V;   /* signed registers read sign-extended */
    *i = (int32_t)CW_WAVEFORM_I;
    *j_low = CW_WAVEFORM_J;
}
void hal_waveform_pop(void) { CW_WAVEFORM_POP = 1u; }
uint64_t hal_waveform_count(void)
{
    uint32_t lo = CW_WAVEFORM_COUNT_LO; /* latches COUNT_HI */
    return (uint64_t)CW_WAVEFORM_COUNT_HI << 32 | lo;
}
uint32_t hal_waveform_drops(void) { return CW_WAVEFORM_DROPS; }

/* --- capture --- */

void hal_capture_arm(const hal_capture_settings_t *s)
{
    CW_CAPTURE_PAIRS = s->pairs;
    CW_CAPTURE_DECIMATION = s->decimation;
    CW_CAPTURE_TRIGGER = s->trigger;
    CW_CAPTURE_LEVEL = (uint32_t)(uint16_t)s->level;
    CW_CAPTURE_HYSTERESIS = s->hysteresis;
    CW_CAPTURE_PRETRIGGER = s->pretrigger;
    CW_CAPTURE_ARM = 1u;
}

bool hal_capture_done(hal_capture_info_t *info)
{
    if (!(CW_CAPTURE_STATUS & CW_CAPTURE_STATUS_DONE_MASK)) {
        return false;
    }
    uint32_t lo = CW_CAPTURE_FIRST_INDEX_LO;
    info->first_index = (uint64_t)CW_CAPTURE_FIRST_INDEX_HI << 32 | lo;
    lo = CW_CAPTURE_TRIGGER_INDEX_LO;
    info->trigger_index = (uint64_t)CW_CAPTURE_TRIGGER_INDEX_HI << 32 | lo;
    info->config_seq = (uint16_t)CW_CAPTURE_CONFIG_SEQ;
    return true;
}

void hal_capture_read(uint16_t first, uint16_t count, int16_t *pairs)
{
    for (uint16_t k = 0; k < count; k++) {
        CW_CAPTURE_READ_ADDR = (uint32_t)first + k;
        uint32_t pair = CW_CAPTURE_READ_DATA;
        pairs[2 * k] = reg_i16(pair);
        pairs[2 * k + 1] = reg_i16(pair >> 16);
    }
}

/* --- configuration flash --- */

void hal_flash_select(bool selected) { CW_FLASH_CONTROL = selected ? CW_FLASH_CONTROL_SELECT_MASK : 0u; }

uint8_t hal_flash_transfer(uint8_t byte)
{
    CW_FLASH_DATA = byte;
    while (CW_FLASH_STATUS & CW_FLASH_STATUS_BUSY_MASK) {
    }
    return (uint8_t)CW_FLASH_RX;
}

/* --- boot --- */

void hal_reboot(void) { CW_SYS_REBOOT = CW_REBOOT_KEY; }

/* On hardware the ADC's last bits are noise, so a short raw capture differs at every boot; the
 * cycle count adds the jitter of PLL lock and USB start-up. In the twin both are deterministic and
 * the boot counter in main.c does the work. */
uint32_t hal_boot_entropy(void)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    const hal_capture_settings_t every_sample = {
        .pairs = ENTROPY_PAIRS, .decimation = 1, .trigger = CW_CAPTURE_TRIGGER_IMMEDIATE};
    hal_capture_arm(&every_sample);
    uint32_t start_ms = CW_SYS_UPTIME_MS;
    while (!(CW_CAPTURE_STATUS & CW_CAPTURE_STATUS_DONE_MASK) && CW_SYS_UPTIME_MS - start_ms < ENTROPY_WAIT_MS) {
    }
    for (uint32_t k = 0; k < ENTROPY_PAIRS; k++) {
        CW_CAPTURE_READ_ADDR = k;
        h = (h ^ CW_CAPTURE_READ_DATA) * 16777619u;
    }
    h = (h ^ CW_SYS_CYCLES_LO) * 16777619u;
    return h;
}
