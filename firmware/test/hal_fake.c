#include "hal_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fake_hal_t fake;
static uint8_t flash_mem[FAKE_FLASH_BYTES];

void fake_reset(void)
{
    fake_reset_keeping_flash();
    flash_model_init(&fake.flash, flash_mem, FAKE_FLASH_BYTES, FAKE_FLASH_UNIQUE_ID);
}

void fake_reset_keeping_flash(void)
{
    flash_model_t flash = fake.flash;
    memset(&fake, 0, sizeof fake);
    /* The power came back: no command in progress, no write enabled, any erase finished (or not). */
    flash_model_select(&flash, false);
    flash.wel = false;
    flash.busy_us = 0;
    fake.flash = flash;
    fake.adc_read_delay = 43; /* the gateware's reset value, settled */
    fake.adc_read_settled = true;
    fake.identity = (hal_identity_t){
        .device_id = 0x0123456789ABCDEFull,
        .gateware_version = 0x000100u,
        .sample_rate_num = 4000000u,
        .sample_rate_den = 1u,
        .capture_depth = FAKE_CAPTURE_DEPTH,
        .board = 3u,
        .adc_part = 0u,
    };
    fake.dsp = (hal_dsp_config_t){
        .mode = 0, .cycles = 10, .fixed_samples = 400000u, .max_samples = 4000000u,
        .zc_hysteresis = 64, .v_gain = 16384, .i_gain = 16384,
    };
    fake.committed = fake.dsp;
    fake.active = fake.dsp;
    for (int k = 0; k < HAL_LINK_COUNT; k++) {
        fake.link[k].tx_free = 1u << 16;
    }
}

void fake_link_receive(int link, const uint8_t *data, size_t len)
{
    fake_link_t *l = &fake.link[link];
    if (l->rx_len + len > sizeof l->rx) {
        fprintf(stderr, "hal_fake: rx buffer full\n");
        abort();
    }
    memcpy(l->rx + l->rx_len, data, len);
    l->rx_len += len;
}

void fake_line_advance(int link, size_t n)
{
    fake_link_t *l = &fake.link[link];
    if (l->fifo_bytes > sizeof l->fifo) {
        fprintf(stderr, "hal_fake: fifo_bytes above %zu\n", sizeof l->fifo);
        abort();
    }
    for (; n > 0 && l->rx_pos < l->rx_len; n--) {
        uint8_t byte = l->rx[l->rx_pos++];
        if (l->fifo_head - l->fifo_tail == l->fifo_bytes) {
            l->rx_overruns++;
            continue;
        }
        l->fifo[l->fifo_head++ % sizeof l->fifo] = byte;
    }
}

size_t fake_link_unread(int link)
{
    const fake_link_t *l = &fake.link[link];
    return l->rx_len - l->rx_pos + (l->fifo_head - l->fifo_tail);
}

void fake_result_push(const uint32_t *words, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        if (fake.result_head - fake.result_tail == FAKE_RESULT_WORDS) {
            fprintf(stderr, "hal_fake: result FIFO full\n");
            abort();
        }
        fake.result[fake.result_head++ % FAKE_RESULT_WORDS] = words[k];
    }
}

size_t fake_result_level(void) { return fake.result_head - fake.result_tail; }

/* --- hal.h --- */

void hal_init(void) {}
uint32_t hal_uptime_ms(void) { return fake.uptime_ms; }
void hal_watchdog_start(uint32_t timeout_ms) { fake.watchdog_timeout_ms = timeout_ms; }
void hal_watchdog_kick(void) { fake.watchdog_kicks++; }
uint16_t hal_watchdog_resets(void) { return fake.watchdog_resets; }
uint32_t hal_samples_dropped(void) { return fake.samples_dropped; }
uint32_t hal_adc_errors(void) { return fake.adc_errors; }
void hal_adc_read_delay_set(uint8_t read_delay) { fake.adc_read_delay = read_delay; }
uint8_t hal_adc_read_delay(void) { return fake.adc_read_delay; }
bool hal_adc_read_settled(void) { return fake.adc_read_settled; }
void hal_identity(hal_identity_t *id) { *id = fake.identity; }

int hal_link_rx(int link)
{
    fake_link_t *l = &fake.link[link];
    if (fake.result_tail < l->rx_after_result_pops) {
        return -1;
    }
    if (l->fifo_bytes != 0) {
        return l->fifo_head != l->fifo_tail ? l->fifo[l->fifo_tail++ % sizeof l->fifo] : -1;
    }
    return l->rx_pos < l->rx_len ? l->rx[l->rx_pos++] : -1;
}

size_t hal_link_tx_free(int link) { return fake.link[link].tx_free; }

void hal_link_tx(int link, uint8_t byte)
{
    fake_link_t *l = &fake.link[link];
    if (l->tx_free == 0 || l->tx_len == sizeof l->tx) {
        /* The SoC ignores writes to a full FIFO; the firmware must never rely on that. */
        fprintf(stderr, "hal_fake: write to a full TX FIFO on link %d\n", link);
        abort();
    }
    l->tx[l->tx_len++] = byte;
    l->tx_free--;
}

bool hal_link_up(int link) { return link != HAL_LINK_USB || fake.usb_up; }
uint16_t hal_link_rx_overruns(int link) { return fake.link[link].rx_overruns; }

void hal_dsp_get_config(hal_dsp_config_t *cfg) { *cfg = fake.dsp; }
bool hal_dsp_commit_pending(void) { return fake.commits_waiting != 0; }

void hal_dsp_apply(const hal_dsp_config_t *cfg)
{
    for (int k = 0; k < HAL_LINK_COUNT; k++) {
        fake_line_advance(k, fake.link[k].line_bytes_per_commit);
    }
    fake.dsp = *cfg;
    fake.committed = fake.dsp;
    fake.commits_waiting++;
    fake.commits++;
}

void fake_dsp_boundary(void)
{
    if (fake.commits_waiting != 0) {
        fake.active = fake.committed;
        fake.config_seq = (uint16_t)(fake.config_seq + fake.commits_waiting);
        fake.commits_waiting = 0;
    }
}

uint16_t hal_dsp_config_seq(void) { return fake.config_seq; }

size_t hal_result_level(void) { return fake_result_level(); }

uint32_t hal_result_peek(void)
{
    if (fake_result_level() == 0) {
        fprintf(stderr, "hal_fake: peek at an empty result FIFO\n");
        abort();
    }
    return fake.result[fake.result_tail % FAKE_RESULT_WORDS];
}

void hal_result_pop(void)
{
    if (fake_result_level() == 0) {
        fprintf(stderr, "hal_fake: pop from an empty result FIFO\n");
        abort();
    }
    fake.result_tail++;
}

uint32_t hal_result_overflows(void) { return fake.result_overflows; }

void fake_waveform_produce(int32_t v, int32_t i)
{
    if (fake.wave.head - fake.wave.tail == 256u) {
        fake.wave.drops++;
    } else {
        size_t at = fake.wave.head++ % 256u;
        fake.wave.v[at] = v;
        fake.wave.i[at] = i;
        fake.wave.j[at] = fake.wave.count;
    }
    fake.wave.count++;
}

size_t hal_waveform_level(void) { return fake.wave.head - fake.wave.tail; }

void hal_waveform_peek(int32_t *v, int32_t *i, uint32_t *j_low)
{
    if (hal_waveform_level() == 0) {
        fprintf(stderr, "hal_fake: peek at an empty waveform FIFO\n");
        abort();
    }
    size_t at = fake.wave.tail % 256u;
    *v = fake.wave.v[at];
    *i = fake.wave.i[at];
    *j_low = (uint32_t)(fake.wave.j[at] & ((1u << 26) - 1u));
}

void hal_waveform_pop(void)
{
    if (hal_waveform_level() == 0) {
        fprintf(stderr, "hal_fake: pop from an empty waveform FIFO\n");
        abort();
    }
    fake.wave.tail++;
}

uint64_t hal_waveform_count(void) { return fake.wave.count; }
uint32_t hal_waveform_drops(void) { return fake.wave.drops; }

void hal_capture_arm(const hal_capture_settings_t *s)
{
    fake.capture.arms++;
    fake.capture.settings = *s;
    fake.capture.done = false;
}

bool hal_capture_done(hal_capture_info_t *info)
{
    if (fake.capture.done) {
        *info = fake.capture.info;
    }
    return fake.capture.done;
}

void hal_capture_read(uint16_t first, uint16_t count, int16_t *pairs)
{
    if ((uint32_t)first + count > fake.capture.settings.pairs) {
        fprintf(stderr, "hal_fake: capture read past the captured pairs\n");
        abort();
    }
    memcpy(pairs, fake.capture.data + 2u * first, 4u * count);
}

uint32_t hal_boot_entropy(void) { return fake.entropy; }

/* --- configuration flash --- */

static void flash_catch_up(void)
{
    flash_model_elapse_us(&fake.flash, (fake.uptime_ms - fake.flash_clock_ms) * 1000u);
    fake.flash_clock_ms = fake.uptime_ms;
}

void hal_flash_select(bool selected)
{
    flash_catch_up();
    fake.flash_commands += selected;
    flash_model_select(&fake.flash, selected);
}

uint8_t hal_flash_transfer(uint8_t byte)
{
    uint8_t out = flash_model_out(&fake.flash);
    flash_model_in(&fake.flash, byte);
    return out;
}

void hal_reboot(void) { fake.reboots++; }

void hal_usb_serial_number(uint64_t serial)
{
    fake.usb_serial = serial;
    fake.usb_serial_sets++;
}
