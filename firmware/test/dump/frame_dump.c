/* Runs the firmware's application code against the fake hardware through a fixed scenario and writes
 * the bytes it sent on the UART to stdout. test/firmware/frames.test.ts decodes them with the
 * TypeScript FrameDecoder: the host must read exactly what the scenario below put in.
 *
 * Scenario: boot; cmd_identify (seq 100); cmd_configure FIXED 4000 (seq 101); cmd_calibrate with an
 * out-of-range phase (seq 102); windows k = 0..2 with the values of window_record(); the host stops
 * reading while 300 more windows arrive, then reads again; one status later; cmd_capture of 300
 * pairs at decimation 4 (seq 103), v = 3n - 5000 and i = -n for pair n. */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "crabwatt_csr.h"
#include "hal_fake.h"

static app_t app;
static __int128 energy; /* the scenario's running Σ v·i, as the gateware would keep it */

static void command(uint8_t type, uint32_t seq, const void *body, size_t len)
{
    uint8_t wire[FRAME_MAX_WIRE_BYTES];
    size_t n = frame_encode(type, seq, body, len, NULL, 0, wire, sizeof wire);
    fake_link_receive(HAL_LINK_UART, wire, n);
    app_poll(&app);
}

static void window_record(unsigned k)
{
    uint32_t w[CW_WINDOW_RECORD_WORDS] = {0};
    uint64_t end_index = 4000ull * (k + 1);
    int64_t sum_v = -1000LL * k - 7;
    int64_t sum_vi = ((int64_t)k - 1) * 1000000000000LL - 3; /* negative, then positive */
    uint64_t sum_vv = 0x0020000000000000ull + k;
    energy += sum_vi;
    w[CW_WINDOW_WORD_HEADER] = CW_RECORD_KIND_WINDOW | CW_WINDOW_RECORD_WORDS << CW_RECORD_HEADER_WORDS_SHIFT |
                               1u << CW_RECORD_HEADER_CONFIG_SEQ_SHIFT;
    w[CW_WINDOW_WORD_END_INDEX_LO] = (uint32_t)end_index;
    w[CW_WINDOW_WORD_END_INDEX_HI] = (uint32_t)(end_index >> 32);
    w[CW_WINDOW_WORD_SAMPLES] = 4000;
    w[CW_WINDOW_WORD_SUM_V_LO] = (uint32_t)sum_v;
    w[CW_WINDOW_WORD_SUM_V_HI] = (uint32_t)((uint64_t)sum_v >> 32);
    w[CW_WINDOW_WORD_SUM_VV_LO] = (uint32_t)sum_vv;
    w[CW_WINDOW_WORD_SUM_VV_HI] = (uint32_t)(sum_vv >> 32);
    w[CW_WINDOW_WORD_SUM_VI_LO] = (uint32_t)sum_vi;
    w[CW_WINDOW_WORD_SUM_VI_HI] = (uint32_t)((uint64_t)sum_vi >> 32);
    w[CW_WINDOW_WORD_MIN_MAX_V] = (uint32_t)(uint16_t)(int16_t)(-100 - (int)k) | (uint32_t)(100 + k) << 16;
    w[CW_WINDOW_WORD_ZC_COUNT_FLAGS] = 2u | (uint32_t)CW_WINDOW_FLAG_CONFIG << 16;
    w[CW_WINDOW_WORD_ZC_FIRST_OFFSET] = 10;
    w[CW_WINDOW_WORD_ZC_FIRST_PREV_CUR] = (uint32_t)(uint16_t)-3 | 4u << 16;
    w[CW_WINDOW_WORD_ZC_LAST_OFFSET] = 2010;
    w[CW_WINDOW_WORD_ZC_LAST_PREV_CUR] = (uint32_t)(uint16_t)-2 | 5u << 16;
    unsigned __int128 e = (unsigned __int128)energy;
    w[CW_WINDOW_WORD_ENERGY_0] = (uint32_t)e;
    w[CW_WINDOW_WORD_ENERGY_1] = (uint32_t)(e >> 32);
    w[CW_WINDOW_WORD_ENERGY_2] = (uint32_t)(e >> 64);
    fake_result_push(w, CW_WINDOW_RECORD_WORDS);
}

int main(void)
{
    fake_reset();
    fake.link[HAL_LINK_UART].tx_free = 1u << 20;
    app_init(&app, 0x600DB007u);
    app_poll(&app);

    command(CW_TYPE_CMD_IDENTIFY, 100, NULL, 0);
    struct cw_cmd_configure cfg = {.mode = CW_WINDOW_MODE_FIXED, .cycles = 10, .fixed_samples = 4000,
                                   .max_samples = 4000000, .zc_hysteresis = 64};
    command(CW_TYPE_CMD_CONFIGURE, 101, &cfg, sizeof cfg);
    struct cw_cmd_calibrate cal = {.v_gain = 16384, .i_gain = 16384, .phase = 1023 * 65536};
    command(CW_TYPE_CMD_CALIBRATE, 102, &cal, sizeof cal);

    unsigned k = 0;
    for (; k < 3; k++) {
        window_record(k);
        app_poll(&app);
    }
    fake.link[HAL_LINK_UART].tx_free = 0;
    for (; k < 303; k++) {
        window_record(k);
        app_poll(&app);
    }
    fake.link[HAL_LINK_UART].tx_free = 1u << 20;
    for (int n = 0; n < 10; n++) app_poll(&app);
    fake.uptime_ms += APP_STATUS_PERIOD_MS;
    app_poll(&app);

    struct cw_cmd_capture cap = {.pairs = 300, .trigger = CW_CAPTURE_TRIGGER_IMMEDIATE, .decimation = 4};
    command(CW_TYPE_CMD_CAPTURE, 103, &cap, sizeof cap);
    for (uint32_t n = 0; n < 300; n++) {
        fake.capture.data[2 * n] = (int16_t)(3 * (int32_t)n - 5000);
        fake.capture.data[2 * n + 1] = (int16_t)(-(int32_t)n);
    }
    fake.capture.info = (hal_capture_info_t){.first_index = 5000000, .trigger_index = 5000000, .config_seq = 1};
    fake.capture.done = true;
    for (int n = 0; n < 10; n++) app_poll(&app);

    fwrite(fake.link[HAL_LINK_UART].tx, 1, fake.link[HAL_LINK_UART].tx_len, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
