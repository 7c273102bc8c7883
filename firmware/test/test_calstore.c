/* The flash side of the firmware against the fake HAL's flash model: the device id from the flash's
 * unique ID, the calibration record (format, CRC, version, two sectors, saves that never stop the
 * loop) and what identify says about it, and cmd_reboot. */
#include <string.h>

#include "app.h"
#include "calstore.h"
#include "check.h"
#include "crc32c.h"
#include "crabwatt_csr.h"
#include "hal_fake.h"

static app_t app;

static const struct cw_cmd_calibrate CAL_A = {.v_offset = -12, .i_offset = 7, .v_gain = 17000, .i_gain = 15000, .phase = -98304};
static const struct cw_cmd_calibrate CAL_B = {.v_offset = 3, .i_offset = -4, .v_gain = 16000, .i_gain = 16500, .phase = 65536};

#define AREA (FAKE_FLASH_BYTES - CW_FLASH_USER_BYTES)

/* The newest frame of `type` the device has sent on the UART since boot; false if none. */
static bool last_frame(uint8_t type, void *body, size_t body_len)
{
    const fake_link_t *l = &fake.link[HAL_LINK_UART];
    static uint8_t chunk[FRAME_MAX_WIRE_BYTES];
    bool found = false;
    size_t start = 0;
    for (size_t k = 0; k < l->tx_len; k++) {
        if (l->tx[k] != 0) continue;
        size_t len = k - start;
        if (len > 0 && len <= sizeof chunk) {
            memcpy(chunk, l->tx + start, len);
            frame_view_t v;
            if (frame_decode(chunk, len, &v) == FRAME_OK && v.type == type) {
                CHECK_EQ(v.body_len, body_len);
                memcpy(body, v.body, body_len);
                found = true;
            }
        }
        start = k + 1;
    }
    return found;
}

static struct cw_identify identify(void)
{
    struct cw_identify id;
    memset(&id, 0, sizeof id);
    CHECK(last_frame(CW_TYPE_IDENTIFY, &id, sizeof id));
    return id;
}

static void send(uint8_t type, uint32_t seq, const void *body, size_t len)
{
    uint8_t wire[FRAME_MAX_WIRE_BYTES];
    size_t n = frame_encode(type, seq, body, len, NULL, 0, wire, sizeof wire);
    CHECK(n > 0);
    fake_link_receive(HAL_LINK_UART, wire, n);
    for (int k = 0; k < 100 && fake.link[HAL_LINK_UART].rx_pos < fake.link[HAL_LINK_UART].rx_len; k++) {
        app_poll(&app);
    }
    app_poll(&app);
}

static struct cw_ack ack(void)
{
    struct cw_ack a;
    memset(&a, 0, sizeof a);
    CHECK(last_frame(CW_TYPE_ACK, &a, sizeof a));
    return a;
}

/* Polls while the device's clock runs `ms` milliseconds, one poll per millisecond. */
static void run_ms(uint32_t ms)
{
    for (uint32_t k = 0; k < ms; k++) {
        fake.uptime_ms++;
        app_poll(&app);
    }
}

static void ask_identify(uint32_t seq)
{
    send(CW_TYPE_CMD_IDENTIFY, seq, NULL, 0);
}

static void boot_blank(void)
{
    fake_reset();
    app_init(&app, 1u);
}

/* A restart of the board: everything but the flash starts over. */
static void reboot_keeping_flash(void)
{
    fake_reset_keeping_flash();
    app_init(&app, 2u);
}

static void check_calibration(const hal_dsp_config_t *cfg, const struct cw_cmd_calibrate *c)
{
    CHECK_EQ(cfg->v_offset, c->v_offset);
    CHECK_EQ(cfg->i_offset, c->i_offset);
    CHECK_EQ(cfg->v_gain, c->v_gain);
    CHECK_EQ(cfg->i_gain, c->i_gain);
    CHECK_EQ(cfg->phase, c->phase);
}

TEST(calstore_record_round_trip_crc_and_version)
{
    const cal_values_t v = {.v_offset = -1, .i_offset = 2, .v_gain = 3, .i_gain = 65535, .phase = -1023 * 65536 + 1};
    uint8_t rec[CALSTORE_RECORD_BYTES];
    calstore_encode(rec, 0xFFFFFFFFu, &v);
    uint32_t gen = 0;
    cal_values_t got;
    CHECK_EQ(calstore_decode(rec, &gen, &got), RECORD_VALID);
    CHECK_EQ(gen, 0xFFFFFFFFu);
    CHECK(memcmp(&got, &v, sizeof v) == 0);
    for (unsigned k = 0; k < sizeof rec; k++) { /* any one flipped bit is caught */
        rec[k] ^= 0x10;
        CHECK_EQ(calstore_decode(rec, &gen, &got), RECORD_BAD);
        rec[k] ^= 0x10;
    }
    /* Another version is refused even with its CRC right. */
    rec[4] = 2;
    uint32_t crc = crc32c(rec, 24);
    memcpy(rec + 24, &crc, 4);
    CHECK_EQ(calstore_decode(rec, &gen, &got), RECORD_BAD);
    memset(rec, 0xFF, sizeof rec);
    CHECK_EQ(calstore_decode(rec, &gen, &got), RECORD_BLANK);
}

TEST(calstore_device_id_is_the_flash_unique_id_and_blank_flash_means_defaults)
{
    boot_blank();
    app_poll(&app);
    struct cw_identify id = identify();
    CHECK_EQ(id.device_id, FAKE_FLASH_UNIQUE_ID);
    CHECK_EQ(fake.usb_serial, FAKE_FLASH_UNIQUE_ID);   /* the USB iSerialNumber too */
    CHECK_EQ(fake.usb_serial_sets, 1);
    CHECK_EQ(id.calibration_source, CW_CALIBRATION_SOURCE_DEFAULTS);
    CHECK_EQ(fake.commits, 0);
    CHECK_EQ(id.v_gain, 16384);
}

TEST(calstore_without_a_flash_the_build_id_and_nothing_saved)
{
    fake_reset();
    fake.flash.absent = true;
    app_init(&app, 1u);
    app_poll(&app);
    CHECK_EQ(identify().device_id, fake.identity.device_id);
    CHECK_EQ(fake.usb_serial, fake.identity.device_id);
    CHECK_EQ(identify().calibration_source, CW_CALIBRATION_SOURCE_NO_FLASH);
    send(CW_TYPE_CMD_CALIBRATE, 5, &CAL_A, sizeof CAL_A);
    CHECK_EQ(ack().status, CW_ACK_OK);
    run_ms(100);
    ask_identify(6);
    CHECK_EQ(identify().calibration_source, CW_CALIBRATION_SOURCE_HOST_UNSAVED);
    CHECK_EQ(fake.flash.erases + fake.flash.programs, 0);
}

TEST(calstore_calibration_survives_a_reboot_and_is_applied_at_boot)
{
    boot_blank();
    send(CW_TYPE_CMD_CALIBRATE, 5, &CAL_A, sizeof CAL_A);
    CHECK_EQ(ack().status, CW_ACK_OK);
    ask_identify(6);
    CHECK_EQ(identify().calibration_source, CW_CALIBRATION_SOURCE_HOST_UNSAVED);
    /* The erase takes 45 ms in the model: the loop keeps polling meanwhile (one poll per ms here). */
    uint32_t polls_before = fake.watchdog_kicks;
    run_ms(60);
    CHECK(fake.watchdog_kicks - polls_before >= 60);
    CHECK_EQ(fake.flash.erases, 1);
    CHECK_EQ(fake.flash.programs, 1);
    ask_identify(7);
    CHECK_EQ(identify().calibration_source, CW_CALIBRATION_SOURCE_HOST_SAVED);

    reboot_keeping_flash();
    /* Committed during app_init, before any window the DSP closes after the boot. */
    CHECK_EQ(fake.commits, 1);
    check_calibration(&fake.committed, &CAL_A);
    app_poll(&app);
    struct cw_identify id = identify();
    CHECK_EQ(id.calibration_source, CW_CALIBRATION_SOURCE_FLASH);
    CHECK_EQ(id.v_gain, CAL_A.v_gain);
    CHECK_EQ(id.phase, CAL_A.phase);
    CHECK_EQ(id.config_seq, 1);
    CHECK_EQ(id.device_id, FAKE_FLASH_UNIQUE_ID);
}

TEST(calstore_the_same_calibration_again_is_not_written)
{
    boot_blank();
    send(CW_TYPE_CMD_CALIBRATE, 5, &CAL_A, sizeof CAL_A);
    run_ms(60);
    reboot_keeping_flash();
    uint32_t erases = fake.flash.erases;
    send(CW_TYPE_CMD_CALIBRATE, 8, &CAL_A, sizeof CAL_A); /* the host re-pushes what it stored */
    run_ms(60);
    CHECK_EQ(fake.flash.erases, erases);
    ask_identify(9);
    CHECK_EQ(identify().calibration_source, CW_CALIBRATION_SOURCE_HOST_SAVED);
}

TEST(calstore_a_bad_record_means_defaults_and_the_flag)
{
    boot_blank();
    send(CW_TYPE_CMD_CALIBRATE, 5, &CAL_A, sizeof CAL_A);
    run_ms(60);
    fake.flash.mem[AREA + 16] ^= 0x01; /* the saved record's v_gain, in sector 0 */
    reboot_keeping_flash();
    CHECK_EQ(fake.commits, 0);
    app_poll(&app);
    struct cw_identify id = identify();
    CHECK_EQ(id.calibration_source, CW_CALIBRATION_SOURCE_BAD_RECORD);
    CHECK_EQ(id.v_gain, 16384);
    /* The host's push then wins and is saved over it. */
    send(CW_TYPE_CMD_CALIBRATE, 6, &CAL_B, sizeof CAL_B);
    run_ms(60);
    reboot_keeping_flash();
    app_poll(&app);
    CHECK_EQ(identify().calibration_source, CW_CALIBRATION_SOURCE_FLASH);
    check_calibration(&fake.committed, &CAL_B);
}

TEST(calstore_saves_alternate_sectors_so_a_cut_save_keeps_the_previous_record)
{
    boot_blank();
    send(CW_TYPE_CMD_CALIBRATE, 5, &CAL_A, sizeof CAL_A);
    run_ms(60);
    send(CW_TYPE_CMD_CALIBRATE, 6, &CAL_B, sizeof CAL_B);
    run_ms(10);                                         /* mid-erase of the other sector: power lost */
    CHECK_EQ(fake.flash.erases, 2);
    CHECK_EQ(fake.flash.programs, 1);
    fake.flash.mem[AREA + CW_FLASH_SECTOR_BYTES] = 0x00; /* that sector half erased */
    reboot_keeping_flash();
    app_poll(&app);
    CHECK_EQ(identify().calibration_source, CW_CALIBRATION_SOURCE_FLASH);
    check_calibration(&fake.committed, &CAL_A);
    /* Saved whole, the newer generation wins over the older sector. */
    send(CW_TYPE_CMD_CALIBRATE, 7, &CAL_B, sizeof CAL_B);
    run_ms(60);
    reboot_keeping_flash();
    check_calibration(&fake.committed, &CAL_B);
    send(CW_TYPE_CMD_CALIBRATE, 8, &CAL_A, sizeof CAL_A);
    run_ms(60);
    reboot_keeping_flash();
    check_calibration(&fake.committed, &CAL_A);
}

TEST(calstore_a_calibration_during_a_save_is_saved_after_it)
{
    boot_blank();
    send(CW_TYPE_CMD_CALIBRATE, 5, &CAL_A, sizeof CAL_A);
    run_ms(5);
    send(CW_TYPE_CMD_CALIBRATE, 6, &CAL_B, sizeof CAL_B);
    run_ms(150);
    ask_identify(7);
    CHECK_EQ(identify().calibration_source, CW_CALIBRATION_SOURCE_HOST_SAVED);
    reboot_keeping_flash();
    check_calibration(&fake.committed, &CAL_B);
}

TEST(calstore_asks_a_busy_flash_at_most_once_a_millisecond)
{
    boot_blank();
    send(CW_TYPE_CMD_CALIBRATE, 5, &CAL_A, sizeof CAL_A);
    run_ms(2);
    CHECK_EQ(fake.flash.erases, 1);
    uint32_t commands = fake.flash_commands;
    for (int k = 0; k < 1000; k++) { /* a busy loop within one millisecond: receiving a command burst */
        app_poll(&app);
    }
    CHECK_EQ(fake.flash_commands, commands);
    run_ms(1);
    CHECK_EQ(fake.flash_commands, commands + 1); /* one status read */
}

TEST(calstore_a_flash_that_stays_busy_fails_the_save_and_says_so)
{
    boot_blank();
    send(CW_TYPE_CMD_CALIBRATE, 5, &CAL_A, sizeof CAL_A);
    app_poll(&app);
    fake.flash.busy_us = 0xFFFFFFFFu; /* the erase never ends */
    run_ms(CALSTORE_STEP_LIMIT_MS + 10);
    CHECK_EQ(app.store.failures, 1);
    CHECK(calstore_idle(&app.store));
    ask_identify(6);
    CHECK_EQ(identify().calibration_source, CW_CALIBRATION_SOURCE_HOST_UNSAVED);
}

TEST(reboot_waits_for_the_ack_and_the_save_then_pulls_programn)
{
    boot_blank();
    send(CW_TYPE_CMD_CALIBRATE, 5, &CAL_A, sizeof CAL_A);
    send(CW_TYPE_CMD_REBOOT, 6, NULL, 0);
    CHECK_EQ(ack().command_seq, 6);
    CHECK_EQ(ack().status, CW_ACK_OK);
    run_ms(40);
    CHECK_EQ(fake.reboots, 0);                /* the save (45 ms erase) is still under way */
    while (!calstore_idle(&app.store) && fake.uptime_ms < 1000) {
        run_ms(1);
    }
    CHECK_EQ(fake.flash.programs, 1);
    run_ms(APP_REBOOT_DRAIN_MS - 1);
    CHECK_EQ(fake.reboots, 0);                /* the link's drain time */
    run_ms(1);
    CHECK_EQ(fake.reboots, 1);
    reboot_keeping_flash();
    check_calibration(&fake.committed, &CAL_A);
}
