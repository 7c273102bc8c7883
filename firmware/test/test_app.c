/* app.c against the fake hardware: commands and acks, windows and energy, drops when the link is
 * full, captures, status, watchdog, link choice. Frames are read back with the firmware's own
 * decoder here; test/firmware/ decodes the same bytes with the TypeScript one. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "check.h"
#include "crabwatt_csr.h"
#include "crc32c.h"
#include "app_harness.h"
#include "hal_fake.h"

TEST(app_boot_sends_identify_then_status)
{
    boot();
    app_poll(&app);
    /* The first byte after boot is a lone delimiter, so stale bytes on the line cannot join the identify. */
    CHECK(fake.link[HAL_LINK_UART].tx_len > 1);
    CHECK_EQ(fake.link[HAL_LINK_UART].tx[0], 0);
    CHECK(fake.link[HAL_LINK_UART].tx[1] != 0);
    size_t n = take_frames(HAL_LINK_UART);
    CHECK_EQ(n, 2);
    CHECK_EQ(sent[0].type, CW_TYPE_IDENTIFY);
    CHECK_EQ(sent[0].seq, 0);
    CHECK_EQ(sent[1].type, CW_TYPE_STATUS);
    CHECK_EQ(sent[1].seq, 1);
    struct cw_identify id;
    CHECK_EQ(sent[0].body_len, sizeof id);
    memcpy(&id, sent[0].body, sizeof id);
    CHECK_EQ(id.device_id, FAKE_FLASH_UNIQUE_ID); /* the flash's, not the build's IDENT.DEVICE_ID */
    CHECK_EQ(id.calibration_source, CW_CALIBRATION_SOURCE_DEFAULTS);
    CHECK_EQ(id.boot_id, 0xB0071D01u);
    CHECK_EQ(id.board, 3);
    CHECK_EQ(id.protocol_version, CW_PROTOCOL_VERSION);
    CHECK_EQ(id.gateware_version, 0x000100u);
    CHECK_EQ(id.firmware_version, FIRMWARE_VERSION);
    CHECK_EQ(id.sample_rate_num, 4000000u);
    CHECK_EQ(id.sample_rate_den, 1u);
    CHECK_EQ(id.capture_depth, FAKE_CAPTURE_DEPTH);
    CHECK_EQ(id.cycles, 10);
    CHECK_EQ(id.max_samples, 4000000u);
    CHECK_EQ(id.v_gain, 16384);
    CHECK_EQ(fake.link[HAL_LINK_USB].tx_len, 0);
}

TEST(app_kicks_the_watchdog_every_poll)
{
    boot();
    uint32_t before = fake.watchdog_kicks;
    for (int k = 0; k < 10; k++) app_poll(&app);
    CHECK_EQ(fake.watchdog_kicks - before, 10);
}

TEST(app_identify_and_status_answer_before_their_ack)
{
    boot();
    app_poll(&app);
    size_t before;
    struct cw_ack a = command(CW_TYPE_CMD_IDENTIFY, 77, NULL, 0, &before);
    CHECK_EQ(a.status, CW_ACK_OK);
    CHECK_EQ(before, 1);
    CHECK_EQ(sent[0].type, CW_TYPE_IDENTIFY);
    fake.samples_dropped = 5;
    fake.adc_errors = 6;
    fake.result_overflows = 7;
    fake.watchdog_resets = 2;
    fake.uptime_ms = 123;
    a = command(CW_TYPE_CMD_STATUS, 78, NULL, 0, &before);
    CHECK_EQ(a.status, CW_ACK_OK);
    CHECK_EQ(before, 1);
    struct cw_status st;
    memcpy(&st, sent[0].body, sizeof st);
    CHECK_EQ(sent[0].type, CW_TYPE_STATUS);
    CHECK_EQ(st.boot_id, 0xB0071D01u);
    CHECK_EQ(st.uptime_ms, 123);
    CHECK_EQ(st.samples_dropped, 5);
    CHECK_EQ(st.adc_errors, 6);
    CHECK_EQ(st.fifo_overflows, 7);
    CHECK_EQ(st.watchdog_resets, 2);
    CHECK_EQ(st.frames_dropped, 0);
}

TEST(app_configure_validates_and_commits)
{
    boot();
    struct cw_cmd_configure c = {.mode = CW_WINDOW_MODE_FIXED, .cycles = 12, .fixed_samples = 4000,
                                 .max_samples = 1u << 24, .zc_hysteresis = 100};
    struct cw_ack a = command(CW_TYPE_CMD_CONFIGURE, 1, &c, sizeof c, NULL);
    CHECK_EQ(a.status, CW_ACK_OK);
    CHECK_EQ(a.value, 1);
    CHECK_EQ(fake.dsp.mode, CW_WINDOW_MODE_FIXED);
    CHECK_EQ(fake.dsp.cycles, 12);
    CHECK_EQ(fake.dsp.fixed_samples, 4000);
    CHECK_EQ(fake.dsp.max_samples, 1u << 24);
    CHECK_EQ(fake.dsp.zc_hysteresis, 100);
    CHECK_EQ(fake.dsp.v_gain, 16384); /* calibration untouched */

    const struct cw_cmd_configure bad[] = {
        {.mode = 2, .cycles = 10, .fixed_samples = 1, .max_samples = 1, .zc_hysteresis = 0},
        {.mode = 0, .cycles = 0, .fixed_samples = 1, .max_samples = 1, .zc_hysteresis = 0},
        {.mode = 0, .cycles = 1001, .fixed_samples = 1, .max_samples = 1, .zc_hysteresis = 0},
        {.mode = 0, .cycles = 1, .fixed_samples = 0, .max_samples = 1, .zc_hysteresis = 0},
        {.mode = 0, .cycles = 1, .fixed_samples = (1u << 24) + 1, .max_samples = 1, .zc_hysteresis = 0},
        {.mode = 0, .cycles = 1, .fixed_samples = 1, .max_samples = 0, .zc_hysteresis = 0},
        {.mode = 0, .cycles = 1, .fixed_samples = 1, .max_samples = (1u << 24) + 1, .zc_hysteresis = 0},
        {.mode = 0, .cycles = 1, .fixed_samples = 1, .max_samples = 1, .zc_hysteresis = 32768},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        a = command(CW_TYPE_CMD_CONFIGURE, 10 + (uint32_t)k, &bad[k], sizeof bad[k], NULL);
        CHECK_EQ(a.status, CW_ACK_BAD_ARGS);
    }
    CHECK_EQ(fake.commits, 1);
}

/* Commands while a commit still waits for its sample boundary are committed too (the DSP counts
 * them all at that boundary, the last one's values win), and each ack names the config_seq its
 * windows will carry; identify and status report the newest. */
TEST(app_commits_queue_behind_a_waiting_commit)
{
    boot();
    fake.config_seq = 40;
    struct cw_cmd_configure w = {.mode = CW_WINDOW_MODE_FIXED, .cycles = 3, .fixed_samples = 1000,
                                 .max_samples = 5000, .zc_hysteresis = 500};
    struct cw_cmd_calibrate k = {.v_offset = 7, .i_offset = -9, .v_gain = 17000, .i_gain = 15000, .phase = 65536};
    struct cw_ack a = command(CW_TYPE_CMD_CONFIGURE, 1, &w, sizeof w, NULL);
    CHECK_EQ(a.status, CW_ACK_OK);
    CHECK_EQ(a.value, 41);
    CHECK(hal_dsp_commit_pending());
    a = command(CW_TYPE_CMD_CALIBRATE, 2, &k, sizeof k, NULL);
    CHECK_EQ(a.status, CW_ACK_OK);
    CHECK_EQ(a.value, 42);
    CHECK_EQ(fake.commits, 2);
    CHECK_EQ(fake.commits_waiting, 2);
    /* The second commit carries the first one's window rules as well as its own calibration. */
    CHECK_EQ(fake.committed.mode, CW_WINDOW_MODE_FIXED);
    CHECK_EQ(fake.committed.fixed_samples, 1000);
    CHECK_EQ(fake.committed.zc_hysteresis, 500);
    CHECK_EQ(fake.committed.v_offset, 7);
    CHECK_EQ(fake.committed.phase, 65536);

    size_t before;
    CHECK_EQ(command(CW_TYPE_CMD_IDENTIFY, 3, NULL, 0, &before).status, CW_ACK_OK);
    struct cw_identify id;
    memcpy(&id, sent[0].body, sizeof id);
    CHECK_EQ(id.config_seq, 42);
    CHECK_EQ(id.fixed_samples, 1000);
    CHECK_EQ(id.i_gain, 15000);

    fake_dsp_boundary();
    CHECK_EQ(fake.config_seq, 42);
    CHECK_EQ(fake.active.mode, CW_WINDOW_MODE_FIXED);
    CHECK_EQ(fake.active.i_offset, -9);
    /* Nothing waits now: the next commit counts from the DSP's own config_seq. */
    fake.config_seq = 100;
    a = command(CW_TYPE_CMD_CONFIGURE, 4, &w, sizeof w, NULL);
    CHECK_EQ(a.value, 101);
    CHECK_EQ(command(CW_TYPE_CMD_STATUS, 5, NULL, 0, &before).status, CW_ACK_OK);
    struct cw_status st;
    memcpy(&st, sent[0].body, sizeof st);
    CHECK_EQ(st.config_seq, 101);
    fake_dsp_boundary();

    /* config_seq wraps at 16 bits, in the acks as in the windows. */
    fake.config_seq = 0xFFFF;
    CHECK_EQ(command(CW_TYPE_CMD_CONFIGURE, 6, &w, sizeof w, NULL).value, 0);
    CHECK_EQ(command(CW_TYPE_CMD_CALIBRATE, 7, &k, sizeof k, NULL).value, 1);
    fake_dsp_boundary();
    CHECK_EQ(fake.config_seq, 1);
}

TEST(app_calibrate_keeps_window_rules)
{
    boot();
    fake.dsp.cycles = 50;
    struct cw_cmd_calibrate c = {.v_offset = -12, .i_offset = 34, .v_gain = 20000, .i_gain = 9000,
                                 .phase = -(1023 * 65536 - 1)};
    struct cw_ack a = command(CW_TYPE_CMD_CALIBRATE, 5, &c, sizeof c, NULL);
    CHECK_EQ(a.status, CW_ACK_OK);
    CHECK_EQ(a.value, 1);
    CHECK_EQ(fake.dsp.v_offset, -12);
    CHECK_EQ(fake.dsp.i_offset, 34);
    CHECK_EQ(fake.dsp.v_gain, 20000);
    CHECK_EQ(fake.dsp.i_gain, 9000);
    CHECK_EQ(fake.dsp.phase, -(1023 * 65536 - 1));
    CHECK_EQ(fake.dsp.cycles, 50);
    c.phase = 1023 * 65536;
    CHECK_EQ(command(CW_TYPE_CMD_CALIBRATE, 6, &c, sizeof c, NULL).status, CW_ACK_BAD_ARGS);
    c.phase = -1023 * 65536;
    CHECK_EQ(command(CW_TYPE_CMD_CALIBRATE, 7, &c, sizeof c, NULL).status, CW_ACK_BAD_ARGS);
    CHECK_EQ(fake.commits, 1);
}

TEST(app_rejects_bad_lengths_and_unknown_types)
{
    boot();
    uint8_t body[64] = {0};
    CHECK_EQ(command(CW_TYPE_CMD_IDENTIFY, 1, body, 1, NULL).status, CW_ACK_BAD_LENGTH);
    CHECK_EQ(command(CW_TYPE_CMD_STATUS, 2, body, 3, NULL).status, CW_ACK_BAD_LENGTH);
    CHECK_EQ(command(CW_TYPE_CMD_CONFIGURE, 3, body, sizeof(struct cw_cmd_configure) - 1, NULL).status,
             CW_ACK_BAD_LENGTH);
    CHECK_EQ(command(CW_TYPE_CMD_CALIBRATE, 4, body, sizeof(struct cw_cmd_calibrate) + 1, NULL).status,
             CW_ACK_BAD_LENGTH);
    CHECK_EQ(command(CW_TYPE_CMD_CAPTURE, 5, body, 0, NULL).status, CW_ACK_BAD_LENGTH);
    CHECK_EQ(command(CW_TYPE_CMD_REBOOT, 6, body, 1, NULL).status, CW_ACK_BAD_LENGTH);
    CHECK_EQ(command(0x9E, 6, NULL, 0, NULL).status, CW_ACK_UNKNOWN_COMMAND);
    /* A device-to-host type sent to the device is not a command either. */
    CHECK_EQ(command(CW_TYPE_WINDOW, 7, NULL, 0, NULL).status, CW_ACK_UNKNOWN_COMMAND);
    CHECK_EQ(fake.commits, 0);
    CHECK_EQ(fake.capture.arms, 0);
}

/* Every intact frame gets an ack, whatever its length: a long frame of a type this firmware does not
 * know (a future command, or a device frame echoed back) included. */
TEST(app_answers_long_frames_of_unknown_types)
{
    boot();
    static uint8_t body[CW_MAX_FRAME_BYTES];
    for (size_t k = 0; k < sizeof body; k++) body[k] = (uint8_t)(k * 7);
    CHECK_EQ(command(0x9F, 500, body, 1000, NULL).status, CW_ACK_UNKNOWN_COMMAND);
    CHECK_EQ(command(CW_TYPE_CAPTURE_CHUNK, 501, body, CW_MAX_FRAME_BYTES - CW_HEADER_BYTES - CW_CRC_BYTES, NULL).status,
             CW_ACK_UNKNOWN_COMMAND);
    CHECK_EQ(command(CW_TYPE_CMD_CALIBRATE, 502, body, 300, NULL).status, CW_ACK_BAD_LENGTH);
    CHECK_EQ(fake.commits, 0);
}

TEST(app_ignores_damaged_commands_and_recovers)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    uint8_t wire[FRAME_MAX_WIRE_BYTES];
    size_t n = frame_encode(CW_TYPE_CMD_IDENTIFY, 9, NULL, 0, NULL, 0, wire, sizeof wire);
    /* Flip each bit of the stuffed frame in turn: none may be answered, none may crash. */
    for (size_t bit = 0; bit < 8 * (n - 1); bit++) {
        uint8_t copy[FRAME_MAX_WIRE_BYTES];
        memcpy(copy, wire, n);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        fake_link_receive(HAL_LINK_UART, copy, n);
        fake_link_receive(HAL_LINK_UART, (const uint8_t[]){0}, 1); /* end any frame the flip merged */
        app_poll(&app);
    }
    size_t got = take_frames(HAL_LINK_UART);
    for (size_t k = 0; k < got; k++) CHECK(sent[k].type != CW_TYPE_ACK);
    CHECK(app.rx_errors > 0);
    /* Garbage, an overlong chunk, a wrong protocol version, then a good command. */
    uint8_t junk[1200]; /* longer than any frame */
    memset(junk, 0x41, sizeof junk);
    fake_link_receive(HAL_LINK_UART, junk, sizeof junk);
    fake_link_receive(HAL_LINK_UART, (const uint8_t[]){0, 0x13, 0x37, 0}, 4);
    uint8_t raw[CW_HEADER_BYTES + CW_CRC_BYTES] = {CW_PROTOCOL_VERSION + 1, CW_TYPE_CMD_IDENTIFY, 1, 0, 0, 0};
    uint32_t crc = crc32c(raw, CW_HEADER_BYTES);
    memcpy(raw + CW_HEADER_BYTES, &crc, 4);
    n = cobs_encode(raw, sizeof raw, wire, sizeof wire);
    wire[n] = 0;
    fake_link_receive(HAL_LINK_UART, wire, n + 1);
    poll_until_heard(HAL_LINK_UART);
    CHECK_EQ(take_frames(HAL_LINK_UART), 0);
    CHECK(app.rx[HAL_LINK_UART].oversize > 0);
    CHECK_EQ(command(CW_TYPE_CMD_STATUS, 4242, NULL, 0, NULL).status, CW_ACK_OK);
}

/* A window record as the gateware writes it (firmware/include/crabwatt_csr.h), from chosen fields. */
static void make_record(uint32_t *w, uint64_t end_index, int64_t sum_vi, uint32_t energy_hi, uint32_t energy_mid,
                        uint32_t energy_lo, uint16_t config_seq)
{
    memset(w, 0, CW_WINDOW_RECORD_WORDS * 4);
    w[CW_WINDOW_WORD_HEADER] = CW_RECORD_KIND_WINDOW | CW_WINDOW_RECORD_WORDS << CW_RECORD_HEADER_WORDS_SHIFT |
                               (uint32_t)config_seq << CW_RECORD_HEADER_CONFIG_SEQ_SHIFT;
    w[CW_WINDOW_WORD_END_INDEX_LO] = (uint32_t)end_index;
    w[CW_WINDOW_WORD_END_INDEX_HI] = (uint32_t)(end_index >> 32);
    w[CW_WINDOW_WORD_SAMPLES] = 80000;
    int64_t sum_v = -123456789012LL;
    w[CW_WINDOW_WORD_SUM_V_LO] = (uint32_t)sum_v;
    w[CW_WINDOW_WORD_SUM_V_HI] = (uint32_t)((uint64_t)sum_v >> 32);
    w[CW_WINDOW_WORD_SUM_I_LO] = 17;
    w[CW_WINDOW_WORD_SUM_VV_LO] = 0xFFFFFFFFu;
    w[CW_WINDOW_WORD_SUM_VV_HI] = 0x003FFFFFu;
    w[CW_WINDOW_WORD_SUM_II_LO] = 5;
    w[CW_WINDOW_WORD_SUM_II_HI] = 1;
    w[CW_WINDOW_WORD_SUM_VI_LO] = (uint32_t)sum_vi;
    w[CW_WINDOW_WORD_SUM_VI_HI] = (uint32_t)((uint64_t)sum_vi >> 32);
    w[CW_WINDOW_WORD_MIN_MAX_V] = (uint32_t)(uint16_t)-8192 | (uint32_t)8191 << 16;
    w[CW_WINDOW_WORD_MIN_MAX_I] = (uint32_t)(uint16_t)-32768 | (uint32_t)32767 << 16;
    w[CW_WINDOW_WORD_ZC_COUNT_FLAGS] = 10u | (uint32_t)(CW_WINDOW_FLAG_PARTIAL | CW_WINDOW_FLAG_SAT_I) << 16;
    w[CW_WINDOW_WORD_ZC_FIRST_OFFSET] = 3;
    w[CW_WINDOW_WORD_ZC_FIRST_PREV_CUR] = (uint32_t)(uint16_t)-5 | (uint32_t)7 << 16;
    w[CW_WINDOW_WORD_ZC_LAST_OFFSET] = 72003;
    w[CW_WINDOW_WORD_ZC_LAST_PREV_CUR] = (uint32_t)(uint16_t)-1 | (uint32_t)0 << 16;
    w[CW_WINDOW_WORD_ENERGY_0] = energy_lo;
    w[CW_WINDOW_WORD_ENERGY_1] = energy_mid;
    w[CW_WINDOW_WORD_ENERGY_2] = energy_hi;
}

/* The UART's receive FIFO holds 64 bytes, less than the line brings in while a batch of windows is
 * forwarded: bytes that arrive meanwhile are heard between two records, not after the batch. */
TEST(app_hears_commands_between_window_records)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    uint32_t w[CW_WINDOW_RECORD_WORDS];
    for (unsigned k = 0; k < 3; k++) {
        make_record(w, 1000u * (k + 1u), 0, 0, 0, k, 0);
        fake_result_push(w, CW_WINDOW_RECORD_WORDS);
    }
    send_command(HAL_LINK_UART, CW_TYPE_CMD_STATUS, 42, NULL, 0);
    fake.link[HAL_LINK_UART].rx_after_result_pops = fake.result_tail + CW_WINDOW_RECORD_WORDS;
    app_poll(&app);
    CHECK_EQ(fake_result_level(), 0);
    const uint8_t want[] = {CW_TYPE_WINDOW, CW_TYPE_ENERGY, CW_TYPE_STATUS, CW_TYPE_ACK,
                            CW_TYPE_WINDOW, CW_TYPE_ENERGY, CW_TYPE_WINDOW, CW_TYPE_ENERGY};
    size_t n = take_frames(HAL_LINK_UART);
    CHECK_EQ(n, sizeof want);
    for (size_t k = 0; k < n && k < sizeof want; k++) {
        CHECK_EQ(sent[k].type, want[k]);
    }
    CHECK_EQ(ack_of(&sent[3]).command_seq, 42);
}

TEST(app_forwards_window_and_energy)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    uint32_t w[CW_WINDOW_RECORD_WORDS];
    make_record(w, 0x123456789ull, -987654321987LL, 0x80000000u, 0x01234567u, 0x89ABCDEFu, 0xBEEF);
    fake_result_push(w, CW_WINDOW_RECORD_WORDS);
    app_poll(&app);
    CHECK_EQ(fake_result_level(), 0);
    size_t n = take_frames(HAL_LINK_UART);
    CHECK_EQ(n, 2);
    CHECK_EQ(sent[0].type, CW_TYPE_WINDOW);
    CHECK_EQ(sent[1].type, CW_TYPE_ENERGY);
    CHECK_EQ(sent[1].seq, sent[0].seq + 1);
    struct cw_window win;
    CHECK_EQ(sent[0].body_len, sizeof win);
    memcpy(&win, sent[0].body, sizeof win);
    CHECK_EQ(win.end_index, 0x123456789ull);
    CHECK_EQ(win.samples, 80000);
    CHECK_EQ(win.sum_v, -123456789012LL);
    CHECK_EQ(win.sum_i, 17);
    CHECK_EQ(win.sum_vv, 0x003FFFFFFFFFFFFFull);
    CHECK_EQ(win.sum_ii, 0x100000005ull);
    CHECK_EQ(win.sum_vi, -987654321987LL);
    CHECK_EQ(win.min_v, -8192);
    CHECK_EQ(win.max_v, 8191);
    CHECK_EQ(win.min_i, -32768);
    CHECK_EQ(win.max_i, 32767);
    CHECK_EQ(win.zc_count, 10);
    CHECK_EQ(win.zc_first_offset, 3);
    CHECK_EQ(win.zc_first_prev, -5);
    CHECK_EQ(win.zc_first_cur, 7);
    CHECK_EQ(win.zc_last_offset, 72003);
    CHECK_EQ(win.zc_last_prev, -1);
    CHECK_EQ(win.zc_last_cur, 0);
    CHECK_EQ(win.flags, CW_WINDOW_FLAG_PARTIAL | CW_WINDOW_FLAG_SAT_I);
    CHECK_EQ(win.config_seq, 0xBEEF);

    struct cw_energy e;
    CHECK_EQ(sent[1].body_len, sizeof e);
    memcpy(&e, sent[1].body, sizeof e);
    CHECK_EQ(e.end_index, 0x123456789ull);
    CHECK_EQ(e.boot_id, 0xB0071D01u);
    /* 96-bit two's complement 0x80000000_01234567_89ABCDEF, sign-extended to 128 bits. */
    const uint8_t want_neg[16] = {0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01,
                                  0x00, 0x00, 0x00, 0x80, 0xFF, 0xFF, 0xFF, 0xFF};
    CHECK(memcmp(e.energy, want_neg, 16) == 0);

    make_record(w, 0x200000000ull, 1, 0x7FFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 1);
    fake_result_push(w, CW_WINDOW_RECORD_WORDS);
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 2);
    memcpy(&e, sent[1].body, sizeof e);
    const uint8_t want_pos[16] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                  0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x00, 0x00, 0x00};
    CHECK(memcmp(e.energy, want_pos, 16) == 0);
}

TEST(app_waits_for_a_whole_record_and_skips_unknown_ones)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    uint32_t w[CW_WINDOW_RECORD_WORDS];
    make_record(w, 1000, 5, 0, 0, 5, 0);
    fake_result_push(w, 10);
    for (int k = 0; k < 5; k++) app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 0);
    CHECK_EQ(fake_result_level(), 10);
    fake_result_push(w + 10, CW_WINDOW_RECORD_WORDS - 10);
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 2);

    /* A record of a kind this firmware does not know (3 words), a zero header, then a window. */
    const uint32_t unknown[3] = {0x7Fu | 3u << CW_RECORD_HEADER_WORDS_SHIFT, 1, 2};
    fake_result_push(unknown, 3);
    fake_result_push((const uint32_t[]){0}, 1);
    fake_result_push(w, CW_WINDOW_RECORD_WORDS);
    for (int k = 0; k < 3; k++) app_poll(&app);
    CHECK_EQ(fake_result_level(), 0);
    CHECK_EQ(take_frames(HAL_LINK_UART), 2);
    CHECK_EQ(sent[0].type, CW_TYPE_WINDOW);
    CHECK_EQ(app.records_skipped, 4);
}

/* The host stops reading: the FIFO is still drained at full pace, whole frames are dropped, their
 * seq numbers skipped, the count reported; when the host reads again nothing on the wire is torn. */
TEST(app_full_link_drops_whole_frames_and_never_stalls_the_dsp)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    fake.link[HAL_LINK_UART].tx_free = 0;
    uint32_t w[CW_WINDOW_RECORD_WORDS];
    const unsigned windows = 400; /* ~54 kB of frames into an 8 KiB ring */
    for (unsigned k = 0; k < windows; k++) {
        make_record(w, 4000u * (k + 1), k, 0, 0, k, 0);
        fake_result_push(w, CW_WINDOW_RECORD_WORDS);
        app_poll(&app);
        CHECK_EQ(fake_result_level(), 0);
    }
    CHECK(app.frames_dropped > 0);
    CHECK(ring_used(&app.links.tx) <= LINKS_TX_RING_BYTES);
    uint32_t dropped = app.frames_dropped;

    /* The host reads again, a little at a time. */
    fake.link[HAL_LINK_UART].tx_free = 0;
    for (int k = 0; k < 2000 && ring_used(&app.links.tx) > 0; k++) {
        fake.link[HAL_LINK_UART].tx_free = 7;
        app_poll(&app);
    }
    fake.link[HAL_LINK_UART].tx_free = 1u << 16;
    fake.uptime_ms += APP_STATUS_PERIOD_MS;
    app_poll(&app);
    size_t n = take_frames(HAL_LINK_UART);
    CHECK(n > 2);
    /* Gaps in seq account exactly for the dropped frames; the frames kept are whole windows. */
    uint32_t gaps = sent[0].seq - 2; /* the boot frames took 0 and 1 */
    size_t windows_seen = 0;
    for (size_t k = 1; k < n; k++) {
        CHECK(sent[k].seq > sent[k - 1].seq);
        gaps += sent[k].seq - sent[k - 1].seq - 1;
    }
    for (size_t k = 0; k < n; k++) windows_seen += sent[k].type == CW_TYPE_WINDOW;
    CHECK_EQ(gaps, dropped);
    CHECK_EQ(sent[n - 1].type, CW_TYPE_STATUS);
    struct cw_status st;
    memcpy(&st, sent[n - 1].body, sizeof st);
    CHECK_EQ(st.frames_dropped, dropped);
    CHECK(windows_seen > 40 && windows_seen < windows);
    CHECK_EQ(sent[n - 1].seq, 2u + 2u * windows);
}

TEST(app_status_once_a_second)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    size_t statuses = 0;
    for (uint32_t ms = 0; ms < 5000; ms += 10) {
        fake.uptime_ms = ms;
        app_poll(&app);
        size_t n = take_frames(HAL_LINK_UART);
        for (size_t k = 0; k < n; k++) statuses += sent[k].type == CW_TYPE_STATUS;
    }
    CHECK_EQ(statuses, 4); /* at 1000, 2000, 3000 and 4000 ms */
    /* The millisecond counter wraps after 49.7 days without a pause in the reports. */
    fake.uptime_ms = 0xFFFFFF00u;
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    fake.uptime_ms = 0xFFFFFF00u + APP_STATUS_PERIOD_MS;
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 1);
}

static void fill_capture(uint16_t pairs)
{
    for (uint32_t k = 0; k < pairs; k++) {
        fake.capture.data[2 * k] = (int16_t)(k * 3 - 5000);
        fake.capture.data[2 * k + 1] = (int16_t)(-(int32_t)k);
    }
    fake.capture.info = (hal_capture_info_t){.first_index = 1000000, .trigger_index = 1000100, .config_seq = 4};
    fake.capture.done = true;
}

TEST(app_capture_sends_every_pair_in_chunks)
{
    boot();
    app_poll(&app);
    struct cw_cmd_capture c = {.pairs = 600, .trigger = CW_CAPTURE_TRIGGER_V_RISING, .level = -20, .pretrigger = 100,
                               .decimation = 64, .hysteresis = 30};
    struct cw_ack a = command(CW_TYPE_CMD_CAPTURE, 50, &c, sizeof c, NULL);
    CHECK_EQ(a.status, CW_ACK_OK);
    CHECK_EQ(a.value, 1);
    CHECK_EQ(fake.capture.arms, 1);
    CHECK_EQ(fake.capture.settings.pairs, 600);
    CHECK_EQ(fake.capture.settings.decimation, 64);
    CHECK_EQ(fake.capture.settings.trigger, CW_CAPTURE_TRIGGER_V_RISING);
    CHECK_EQ(fake.capture.settings.level, -20);
    CHECK_EQ(fake.capture.settings.hysteresis, 30);
    CHECK_EQ(fake.capture.settings.pretrigger, 100);
    for (int k = 0; k < 5; k++) app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 0); /* not triggered yet */
    fill_capture(600);
    for (int k = 0; k < 5; k++) app_poll(&app);
    size_t n = take_frames(HAL_LINK_UART);
    CHECK_EQ(n, 3);
    uint32_t pair = 0;
    for (size_t k = 0; k < n; k++) {
        struct cw_capture_chunk h;
        CHECK_EQ(sent[k].type, CW_TYPE_CAPTURE_CHUNK);
        memcpy(&h, sent[k].body, sizeof h);
        CHECK_EQ(h.capture_id, 1);
        CHECK_EQ(h.chunk_index, k);
        CHECK_EQ(h.chunk_count, 3);
        CHECK_EQ(h.first_index, 1000000u + 64u * pair); /* pair k is sample first_index + k·D */
        CHECK_EQ(h.trigger_index, 1000100u);
        CHECK_EQ(h.config_seq, 4);
        CHECK_EQ(h.decimation, 64);
        size_t count = (sent[k].body_len - sizeof h) / 4;
        CHECK_EQ((sent[k].body_len - sizeof h) % 4, 0);
        CHECK_EQ(count, k < 2 ? 256 : 88);
        for (size_t p = 0; p < count; p++, pair++) {
            int16_t v, i;
            memcpy(&v, sent[k].body + sizeof h + 4 * p, 2);
            memcpy(&i, sent[k].body + sizeof h + 4 * p + 2, 2);
            CHECK_EQ(v, (int16_t)(pair * 3 - 5000));
            CHECK_EQ(i, (int16_t)(-(int32_t)pair));
        }
    }
    CHECK_EQ(pair, 600);
    CHECK(!app.capture.active);
}

TEST(app_capture_waits_for_room_instead_of_dropping)
{
    boot();
    app_poll(&app);
    struct cw_cmd_capture c = {.pairs = FAKE_CAPTURE_DEPTH, .trigger = CW_CAPTURE_TRIGGER_IMMEDIATE, .decimation = 1};
    CHECK_EQ(command(CW_TYPE_CMD_CAPTURE, 1, &c, sizeof c, NULL).status, CW_ACK_OK);
    fill_capture(FAKE_CAPTURE_DEPTH);
    fake.link[HAL_LINK_UART].tx_free = 0;
    for (int k = 0; k < 100; k++) app_poll(&app);
    CHECK_EQ(app.frames_dropped, 0);
    CHECK(ring_free(&app.links.tx) >= APP_CAPTURE_RESERVE_BYTES);
    /* Windows still get through while the capture waits. */
    uint32_t w[CW_WINDOW_RECORD_WORDS];
    make_record(w, 5, 5, 0, 0, 5, 0);
    fake_result_push(w, CW_WINDOW_RECORD_WORDS);
    app_poll(&app);
    CHECK_EQ(app.frames_dropped, 0);
    fake.link[HAL_LINK_UART].tx_free = 1u << 16;
    for (int k = 0; k < 100; k++) app_poll(&app);
    size_t n = take_frames(HAL_LINK_UART);
    size_t chunks = 0, windows = 0;
    for (size_t k = 0; k < n; k++) {
        chunks += sent[k].type == CW_TYPE_CAPTURE_CHUNK;
        windows += sent[k].type == CW_TYPE_WINDOW;
    }
    CHECK_EQ(chunks, FAKE_CAPTURE_DEPTH / 256);
    CHECK_EQ(windows, 1);
    CHECK_EQ(app.frames_dropped, 0);
}

TEST(app_capture_rejects_bad_arguments_and_is_busy_while_running)
{
    boot();
    const struct cw_cmd_capture bad[] = {
        {.pairs = 0, .trigger = 0, .decimation = 1},
        {.pairs = FAKE_CAPTURE_DEPTH + 1, .trigger = 0, .decimation = 1},
        {.pairs = 10, .trigger = 5, .decimation = 1},
        {.pairs = 10, .trigger = 1, .pretrigger = 10, .decimation = 1},
        {.pairs = 10, .trigger = 1, .decimation = 0},
        {.pairs = 10, .trigger = 1, .decimation = 1, .hysteresis = 32768},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        CHECK_EQ(command(CW_TYPE_CMD_CAPTURE, (uint32_t)k, &bad[k], sizeof bad[k], NULL).status, CW_ACK_BAD_ARGS);
    }
    CHECK_EQ(fake.capture.arms, 0);
    struct cw_cmd_capture c = {.pairs = 300, .trigger = CW_CAPTURE_TRIGGER_I_FALLING, .pretrigger = 299,
                               .decimation = 65535, .hysteresis = 32767};
    CHECK_EQ(command(CW_TYPE_CMD_CAPTURE, 10, &c, sizeof c, NULL).value, 1);
    CHECK_EQ(command(CW_TYPE_CMD_CAPTURE, 11, &c, sizeof c, NULL).status, CW_ACK_BUSY);
    CHECK_EQ(fake.capture.arms, 1);
    fill_capture(300);
    for (int k = 0; k < 3; k++) app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 2);
    CHECK(!app.capture.active);
    struct cw_ack a = command(CW_TYPE_CMD_CAPTURE, 12, &c, sizeof c, NULL);
    CHECK_EQ(a.status, CW_ACK_OK);
    CHECK_EQ(a.value, 2);
}

/* A trigger level the signal never reaches: APP_CAPTURE_AUTO_TRIGGER_MS after the pretrigger has
 * filled the capture is taken anyway (re-armed as IMMEDIATE with the same pairs, pretrigger and
 * decimation), once. Pretrigger 20 at D = 1000 is 20000 samples, 5 ms at the fake's 4 Msps. */
TEST(app_capture_auto_triggers_a_second_after_the_pretrigger)
{
    boot();
    fake.uptime_ms = 5000;
    struct cw_cmd_capture c = {.pairs = 100, .trigger = CW_CAPTURE_TRIGGER_V_RISING, .level = 30000, .pretrigger = 20,
                               .decimation = 1000, .hysteresis = 9};
    CHECK_EQ(command(CW_TYPE_CMD_CAPTURE, 1, &c, sizeof c, NULL).status, CW_ACK_OK);
    fake.uptime_ms = 5000 + APP_CAPTURE_AUTO_TRIGGER_MS + 5 - 1;
    app_poll(&app);
    CHECK_EQ(fake.capture.arms, 1);
    fake.uptime_ms = 5000 + APP_CAPTURE_AUTO_TRIGGER_MS + 5;
    app_poll(&app);
    CHECK_EQ(fake.capture.arms, 2);
    CHECK_EQ(fake.capture.settings.trigger, CW_CAPTURE_TRIGGER_IMMEDIATE);
    CHECK_EQ(fake.capture.settings.pairs, 100);
    CHECK_EQ(fake.capture.settings.pretrigger, 20);
    CHECK_EQ(fake.capture.settings.decimation, 1000);
    fake.uptime_ms += 5000;
    app_poll(&app);
    CHECK_EQ(fake.capture.arms, 2);
    fill_capture(100);
    app_poll(&app);
    size_t n = take_frames(HAL_LINK_UART);
    CHECK(n >= 1);
    CHECK_EQ(sent[n - 1].type, CW_TYPE_CAPTURE_CHUNK);
    /* An IMMEDIATE capture is never re-armed. */
    c.trigger = CW_CAPTURE_TRIGGER_IMMEDIATE;
    CHECK_EQ(command(CW_TYPE_CMD_CAPTURE, 2, &c, sizeof c, NULL).status, CW_ACK_OK);
    fake.uptime_ms += 10 * APP_CAPTURE_AUTO_TRIGGER_MS;
    app_poll(&app);
    CHECK_EQ(fake.capture.arms, 3);
}

TEST(app_answers_on_the_link_the_host_speaks_on)
{
    boot();
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 2);
    /* USB comes up: with no host heard yet, frames go there. */
    fake.usb_up = true;
    fake.uptime_ms = APP_STATUS_PERIOD_MS;
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_USB), 1);
    /* A host speaks on the UART: answers and everything after go there, even with USB up. */
    send_command(HAL_LINK_UART, CW_TYPE_CMD_STATUS, 3, NULL, 0);
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 2);
    CHECK_EQ(take_frames(HAL_LINK_USB), 0);
    fake.uptime_ms = 2 * APP_STATUS_PERIOD_MS;
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 1);
    CHECK_EQ(take_frames(HAL_LINK_USB), 0);
}

TEST(app_switches_links_only_between_frames)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    uint32_t w[CW_WINDOW_RECORD_WORDS];
    make_record(w, 5, 5, 0, 0, 5, 0);
    fake_result_push(w, CW_WINDOW_RECORD_WORDS);
    fake.link[HAL_LINK_UART].tx_free = 10; /* the UART takes part of the window frame */
    app_poll(&app);
    fake.usb_up = true; /* USB enumerates and a host speaks on it */
    send_command(HAL_LINK_USB, CW_TYPE_CMD_IDENTIFY, 1, NULL, 0);
    fake.link[HAL_LINK_UART].tx_free = 1u << 16;
    for (int k = 0; k < 5; k++) app_poll(&app);
    /* The UART got the window frame whole; the energy frame, identify and ack went to USB. */
    CHECK_EQ(take_frames(HAL_LINK_UART), 1);
    CHECK_EQ(sent[0].type, CW_TYPE_WINDOW);
    CHECK_EQ(take_frames(HAL_LINK_USB), 3);
    CHECK_EQ(read_pos[HAL_LINK_UART], fake.link[HAL_LINK_UART].tx_len);
}

TEST(app_falls_back_to_the_uart_when_usb_goes_away)
{
    boot();
    fake.usb_up = true;
    app_poll(&app);
    send_command(HAL_LINK_USB, CW_TYPE_CMD_STATUS, 1, NULL, 0);
    app_poll(&app);
    app_poll(&app);
    CHECK(take_frames(HAL_LINK_USB) >= 2);
    fake.usb_up = false; /* unplugged */
    fake.uptime_ms = APP_STATUS_PERIOD_MS;
    app_poll(&app);
    size_t n = take_frames(HAL_LINK_UART);
    CHECK(n >= 1);
    CHECK_EQ(sent[n - 1].type, CW_TYPE_STATUS);
    CHECK_EQ(take_frames(HAL_LINK_USB), 0);
}

/* Random bytes on both links, with valid commands mixed in: nothing crashes (ASan/UBSan watch), and
 * every valid command is answered exactly once, in order. */
TEST(app_survives_random_bytes_and_answers_every_valid_command)
{
    boot();
    fake.usb_up = true;
    uint32_t x = 0xC0FFEEu;
    uint32_t next_seq = 1000;
    uint32_t acked = 1000;
    for (int round = 0; round < 400; round++) {
        uint8_t junk[64];
        size_t len = 0;
        for (; len < sizeof junk; len++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            junk[len] = (uint8_t)x;
        }
        int link = round % 2 ? HAL_LINK_USB : HAL_LINK_UART;
        fake_link_receive(link, junk, len);
        /* A delimiter ends whatever the junk started, then a good command follows. */
        fake_link_receive(link, (const uint8_t[]){0}, 1);
        send_command(link, CW_TYPE_CMD_STATUS, next_seq++, NULL, 0);
        poll_until_heard(link);
        size_t n = take_frames(link);
        for (size_t k = 0; k < n; k++) {
            if (sent[k].type != CW_TYPE_ACK) continue;
            struct cw_ack a = ack_of(&sent[k]);
            /* Junk can decode to a command only with a matching CRC: 2^-32 per chunk. */
            CHECK_EQ(a.command_seq, acked);
            acked++;
        }
        take_frames(link == HAL_LINK_USB ? HAL_LINK_UART : HAL_LINK_USB);
        fake.link[HAL_LINK_USB].rx_len = fake.link[HAL_LINK_USB].rx_pos = 0;
        fake.link[HAL_LINK_UART].rx_len = fake.link[HAL_LINK_UART].rx_pos = 0;
    }
    CHECK_EQ(acked, next_seq);
    CHECK(app.rx_errors > 0);
}
